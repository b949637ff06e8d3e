package main

import (
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/bot"
)

// Metrics exposes accessbot's measurements in Prometheus format with the
// official client library. It implements access.Observer and bot.Metrics.
// Durations are in seconds, per Prometheus convention.
type Metrics struct {
	reg *prometheus.Registry

	transitions     *prometheus.CounterVec
	approvalLatency prometheus.Histogram
	connectorCall   *prometheus.HistogramVec
	connectorFail   *prometheus.CounterVec
	revocationLag   prometheus.Histogram
	revoking        *prometheus.GaugeVec
	slackCalls      *prometheus.CounterVec
	slackRateLimit  *prometheus.CounterVec
	reconnects      prometheus.Counter
	connected       prometheus.Gauge
	ackLatency      *prometheus.HistogramVec
	panics          *prometheus.CounterVec
	noticeDelivered *prometheus.CounterVec
	noticeDelay     prometheus.Histogram
	noticeFailed    *prometheus.CounterVec
	noticeCoalesced prometheus.Counter
	outboxQueued    prometheus.Gauge
	busy            prometheus.Counter
}

var (
	_ access.Observer = (*Metrics)(nil)
	_ bot.Metrics     = (*Metrics)(nil)
)

// NewMetrics registers every series on a fresh registry.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	lat := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400}
	m.transitions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "accessbot_request_events_total",
		Help: "Lifecycle events of access requests by system, role and event (requested, approved, denied, granted, expired, ...)."}, []string{"system", "role", "event"})
	m.approvalLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "accessbot_approval_latency_seconds",
		Help: "Time from request to final approval.", Buckets: lat})
	m.connectorCall = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "accessbot_connector_call_seconds",
		Help: "Duration of connector grant and revoke calls.", Buckets: lat}, []string{"connector", "op"})
	m.connectorFail = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "accessbot_connector_failures_total",
		Help: "Failed connector calls by connector and operation."}, []string{"connector", "op"})
	m.revocationLag = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "accessbot_revocation_lag_seconds",
		Help: "Time from expiry to the target confirming the removal.", Buckets: lat})
	m.revoking = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "accessbot_pending_revocations",
		Help: "Grants whose removal has started but is not yet confirmed, by connector."}, []string{"connector"})
	m.slackCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "accessbot_slack_api_calls_total",
		Help: "Slack Web API calls by method and result (ok, or the Slack error code)."}, []string{"method", "result"})
	m.slackRateLimit = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "accessbot_slack_rate_limited_total",
		Help: "Slack 429 answers by method."}, []string{"method"})
	m.reconnects = prometheus.NewCounter(prometheus.CounterOpts{Name: "accessbot_slack_socket_reconnects_total",
		Help: "Socket Mode reconnects."})
	m.connected = prometheus.NewGauge(prometheus.GaugeOpts{Name: "accessbot_slack_socket_connected",
		Help: "1 while the Socket Mode connection is up."})
	m.ackLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "accessbot_slack_ack_seconds",
		Help: "Time from receiving a Slack envelope to acknowledging it, by kind.", Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2, 3}}, []string{"kind"})
	m.panics = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "accessbot_panics_recovered_total",
		Help: "Panics recovered (the process kept serving), by where they happened."}, []string{"where"})
	m.noticeDelivered = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "accessbot_outbox_delivered_total",
		Help: "Notices delivered to Slack from the outbox, by kind."}, []string{"kind"})
	m.noticeDelay = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "accessbot_outbox_delivery_delay_seconds",
		Help: "Time from the transition that made a notice to its delivery (pacing, retries, outages).", Buckets: lat})
	m.noticeFailed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "accessbot_outbox_failed_total",
		Help: "Failed notice deliveries, by kind and outcome (retry: rescheduled with backoff; dropped: cannot ever be delivered)."}, []string{"kind", "outcome"})
	m.noticeCoalesced = prometheus.NewCounter(prometheus.CounterOpts{Name: "accessbot_outbox_coalesced_total",
		Help: "Message updates skipped because an earlier update already showed the latest state."})
	m.outboxQueued = prometheus.NewGauge(prometheus.GaugeOpts{Name: "accessbot_outbox_queued",
		Help: "Notices due and waiting in the paced sender (Slack allows about one message per second per channel)."})
	m.busy = prometheus.NewCounter(prometheus.CounterOpts{Name: "accessbot_requests_refused_busy_total",
		Help: "New requests answered \"busy, try again in a moment\" because due work was running late (overload)."})
	m.reg.MustRegister(m.busy)
	m.reg.MustRegister(m.transitions, m.approvalLatency, m.connectorCall, m.connectorFail, m.revocationLag, m.revoking,
		m.slackCalls, m.slackRateLimit, m.reconnects, m.connected, m.ackLatency,
		m.panics, m.noticeDelivered, m.noticeDelay, m.noticeFailed, m.noticeCoalesced, m.outboxQueued,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry.
func (m *Metrics) Handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

// Transition implements access.Observer.
func (m *Metrics) Transition(r *access.Request, ev access.Event) {
	m.transitions.WithLabelValues(r.System, r.Role, string(ev)).Inc()
	switch ev {
	case access.EventApproved:
		if !r.DecidedAt.IsZero() {
			m.approvalLatency.Observe(r.DecidedAt.Sub(r.CreatedAt).Seconds())
		}
	case access.EventExpiring, access.EventRevoking, access.EventDone, access.EventRollingBack:
		m.revoking.WithLabelValues(r.Entitlement.Connector).Inc()
	case access.EventExpired, access.EventRevoked:
		m.revoking.WithLabelValues(r.Entitlement.Connector).Dec()
	case access.EventGrantFailed:
		if r.RemovalCause() == access.EventRollingBack {
			m.revoking.WithLabelValues(r.Entitlement.Connector).Dec()
		}
	}
}

// NoticeDelivered implements access.Observer.
func (m *Metrics) NoticeDelivered(kind access.NoticeKind, delay time.Duration) {
	m.noticeDelivered.WithLabelValues(string(kind)).Inc()
	m.noticeDelay.Observe(max(delay, 0).Seconds())
}

// NoticeFailed implements access.Observer.
func (m *Metrics) NoticeFailed(kind access.NoticeKind, permanent bool) {
	outcome := "retry"
	if permanent {
		outcome = "dropped"
	}
	m.noticeFailed.WithLabelValues(string(kind), outcome).Inc()
}

// NoticeCoalesced implements access.Observer.
func (m *Metrics) NoticeCoalesced(access.NoticeKind) { m.noticeCoalesced.Inc() }

// OutboxQueued implements access.Observer.
func (m *Metrics) OutboxQueued(n int) { m.outboxQueued.Set(float64(n)) }

// Panic implements access.Observer and bot.Metrics.
func (m *Metrics) Panic(where string) { m.panics.WithLabelValues(where).Inc() }

// ConnectorCall implements access.Observer.
func (m *Metrics) ConnectorCall(connector, op string, d time.Duration, err error) {
	m.connectorCall.WithLabelValues(connector, op).Observe(d.Seconds())
	if err != nil && !errors.Is(err, access.ErrAwaitingConfirmation) {
		m.connectorFail.WithLabelValues(connector, op).Inc()
	}
}

// RevocationLag implements access.Observer.
func (m *Metrics) RevocationLag(r *access.Request, lag time.Duration) {
	m.revocationLag.Observe(max(lag, 0).Seconds())
}

// SlackCall implements bot.Metrics.
func (m *Metrics) SlackCall(method, result string) {
	m.slackCalls.WithLabelValues(method, result).Inc()
}

// SlackRateLimited implements bot.Metrics.
func (m *Metrics) SlackRateLimited(method string) { m.slackRateLimit.WithLabelValues(method).Inc() }

// Reconnect implements bot.Metrics.
func (m *Metrics) Reconnect() { m.reconnects.Inc() }

// Connected implements bot.Metrics.
func (m *Metrics) Connected(up bool) {
	if up {
		m.connected.Set(1)
	} else {
		m.connected.Set(0)
	}
}

// Ack implements bot.Metrics.
func (m *Metrics) Ack(kind string, d time.Duration) {
	m.ackLatency.WithLabelValues(kind).Observe(d.Seconds())
}

// Busy implements bot.Metrics.
func (m *Metrics) Busy() { m.busy.Inc() }
