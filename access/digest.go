package access

import (
	"sort"
	"time"
)

// TopRequestersMax is how many of the most frequent requesters a Digest lists.
const TopRequestersMax = 5

// Digest is what a system's owners are told on the system's digest schedule
// (DESIGN.md §3): what happened in [From, To), and what holds or waits right
// now. Every list is of requests for System only; a request appears in each
// list whose event it went through in the period (a request granted and
// expired within one week is in both Granted and Expired).
type Digest struct {
	System   string
	From, To time.Time // the period; history entries at From count, at To do not

	// Events in the period, newest first (by the time of the event).
	Granted, Denied, TimedOut, Expired, Revoked []*Request
	// AutoApproved were approved by the runbook (approval: auto) in the
	// period; Extended are extensions (Request.Extends) granted in it.
	AutoApproved, Extended []*Request
	// BreakGlass were taken by breaking the glass in the period (granted
	// without approval): the owners review them.
	BreakGlass []*Request

	// Snapshot at BuildDigest's now. Active hold access (soonest to end
	// first); Waiting are pending approval (longest waiting first).
	Active  []*Request
	Waiting []*Request
	// FailedRevocations are being removed and the target keeps failing:
	// access may still be live (invariant 4), longest overdue first.
	FailedRevocations []*Request
	// LateRevocations ended in the period, but after their time: removal
	// started late (the bot was down) or needed retries.
	LateRevocations []*Request

	// TopRequesters are the people who asked most often in the period, most
	// first (ties by user ID), at most TopRequestersMax.
	TopRequesters []Count
}

// Count is how many requests one person made.
type Count struct {
	User string // Slack user ID
	N    int
}

// BuildDigest classifies reqs (a system's requests, as Store.List with
// Filter{System: system} returns them; others are ignored) into a Digest for
// [from, to). Period lists come from history entries whose time is in
// [from, to), so a digest can be rebuilt for any past period; Active,
// Waiting and FailedRevocations are the requests' states as of now. It is
// pure and keeps the pointers it is given (it does not copy requests).
//
// A system's requests are listed in full for now; at scale a time index
// (history entries by time, or requests by last change) would let a digest
// read only the period.
func BuildDigest(system string, from, to time.Time, reqs []*Request, now time.Time) Digest {
	d := Digest{System: system, From: from, To: to}
	// at remembers each listed request's event time, for sorting.
	type item struct {
		r  *Request
		at time.Time
	}
	var granted, denied, timedOut, expired, revoked, auto, extended, late, breakGlass []item
	asked := map[string]int{}
	in := func(t time.Time) bool { return !t.Before(from) && t.Before(to) }
	for _, r := range reqs {
		if r == nil || r.System != system {
			continue
		}
		retried := false
		for _, h := range r.History {
			if h.Event == EventRevokeAttemptFailed {
				retried = true
			}
			if !in(h.At) {
				continue
			}
			switch h.Event {
			case EventRequested:
				asked[r.Requester]++
			case EventApproved:
				if r.Auto {
					auto = append(auto, item{r, h.At})
				}
			case EventBreakGlass:
				breakGlass = append(breakGlass, item{r, h.At})
			case EventGranted:
				granted = append(granted, item{r, h.At})
				if r.Extends != "" {
					extended = append(extended, item{r, h.At})
				}
			case EventDenied:
				denied = append(denied, item{r, h.At})
			case EventTimedOut:
				timedOut = append(timedOut, item{r, h.At})
			case EventExpired, EventRevoked:
				if h.Event == EventExpired {
					expired = append(expired, item{r, h.At})
				} else {
					revoked = append(revoked, item{r, h.At})
				}
				// retried is complete here: attempts precede the end.
				if r.Late || retried {
					late = append(late, item{r, h.At})
				}
			}
		}
		switch {
		case r.State == StateActive:
			d.Active = append(d.Active, r)
		case r.State == StatePending:
			d.Waiting = append(d.Waiting, r)
		case r.State == StateRevoking && (r.Attempts > 0 || r.LastError != ""):
			d.FailedRevocations = append(d.FailedRevocations, r)
		}
	}
	newestFirst := func(xs []item) []*Request {
		sort.SliceStable(xs, func(i, j int) bool {
			if !xs[i].at.Equal(xs[j].at) {
				return xs[i].at.After(xs[j].at)
			}
			return xs[i].r.Seq > xs[j].r.Seq
		})
		out := make([]*Request, len(xs))
		for i, x := range xs {
			out[i] = x.r
		}
		return out
	}
	d.Granted, d.Denied, d.TimedOut = newestFirst(granted), newestFirst(denied), newestFirst(timedOut)
	d.Expired, d.Revoked = newestFirst(expired), newestFirst(revoked)
	d.AutoApproved, d.Extended, d.LateRevocations = newestFirst(auto), newestFirst(extended), newestFirst(late)
	d.BreakGlass = newestFirst(breakGlass)

	byTime := func(xs []*Request, key func(*Request) time.Time) {
		sort.SliceStable(xs, func(i, j int) bool {
			a, b := key(xs[i]), key(xs[j])
			if !a.Equal(b) {
				return a.Before(b)
			}
			return xs[i].Seq < xs[j].Seq
		})
	}
	byTime(d.Active, func(r *Request) time.Time { return r.ExpiresAt })
	byTime(d.Waiting, func(r *Request) time.Time { return r.CreatedAt })
	byTime(d.FailedRevocations, func(r *Request) time.Time { return r.ExpiresAt })

	for u, n := range asked {
		d.TopRequesters = append(d.TopRequesters, Count{User: u, N: n})
	}
	sort.Slice(d.TopRequesters, func(i, j int) bool {
		a, b := d.TopRequesters[i], d.TopRequesters[j]
		if a.N != b.N {
			return a.N > b.N
		}
		return a.User < b.User
	})
	if len(d.TopRequesters) > TopRequestersMax {
		d.TopRequesters = d.TopRequesters[:TopRequestersMax]
	}
	return d
}

// Quiet reports whether there is nothing to tell: no event in the period,
// nobody holding access or waiting, no revocation failing.
func (d Digest) Quiet() bool {
	return len(d.Granted)+len(d.Denied)+len(d.TimedOut)+len(d.Expired)+len(d.Revoked)+
		len(d.AutoApproved)+len(d.Extended)+len(d.BreakGlass)+len(d.Active)+len(d.Waiting)+
		len(d.FailedRevocations)+len(d.LateRevocations)+len(d.TopRequesters) == 0
}
