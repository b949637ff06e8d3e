package access

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"30s", 30 * time.Second},
		{"90m", 90 * time.Minute},
		{"2h", 2 * time.Hour},
		{"1d", 24 * time.Hour},
		{"1h30m", 90 * time.Minute},
		{"1d2h3m4s", 26*time.Hour + 3*time.Minute + 4*time.Second},
		{"1.5h", 90 * time.Minute},
		{"4.35h", 4*time.Hour + 21*time.Minute}, // float rounding used to lose a nanosecond
		{"0.5d", 12 * time.Hour},
		{".5h", 30 * time.Minute},
		{"  2H ", 2 * time.Hour},
		{"36500d", 36500 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if err != nil {
				t.Fatalf("ParseDuration(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseDuration(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseDurationRefused(t *testing.T) {
	tests := []struct {
		name, in, wantMsg string
	}{
		{"empty", "", "empty duration"},
		{"blank", "   ", "empty duration"},
		{"zero", "0s", "must be positive"},
		{"zero combo", "0h0m", "must be positive"},
		{"negative", "-1h", "not a duration"},
		{"no unit", "90", "not a duration"},
		{"unit only", "h", "not a duration"},
		{"unknown unit", "2w", "not a duration"},
		{"go unit ms", "500ms", "not a duration"},
		{"garbage", "banana", "not a duration"},
		{"space inside", "1h 30m", "not a duration"},
		{"two dots", "1.2.3h", "not a duration"},
		{"lone dot", ".h", "not a duration"},
		{"over a century", "36501d", "too long"},
		{"huge number", "99999999999999999999d", "too long"},
		// Six centuries summed used to overflow int64 and wrap to ~5 days.
		{"overflowing sum", strings.Repeat("36500d", 6), "too long"},
		{"sum over limit", "36500d1s", "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if err == nil {
				t.Fatalf("ParseDuration(%q) = %v, want an error", tt.in, got)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("ParseDuration(%q) error %q, want it to say %q", tt.in, err, tt.wantMsg)
			}
			if tt.in != "" && strings.TrimSpace(tt.in) != "" && !strings.Contains(err.Error(), tt.in) {
				t.Errorf("ParseDuration(%q) error %q does not quote the input", tt.in, err)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{-time.Hour, "0s"},
		{500 * time.Millisecond, "0s"},
		{45 * time.Second, "45s"},
		{90 * time.Minute, "1h30m"},
		{2 * time.Hour, "2h"},
		{24 * time.Hour, "1d"},
		{28 * time.Hour, "1d4h"},
		{24*time.Hour + 5*time.Second, "1d5s"},
		{26*time.Hour + 3*time.Minute + 4*time.Second, "1d2h3m4s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := FormatDuration(tt.d); got != tt.want {
				t.Errorf("FormatDuration(%v) = %q, want %q", tt.d, got, tt.want)
			}
			if tt.d >= time.Second && tt.d%time.Second == 0 {
				back, err := ParseDuration(tt.want)
				if err != nil || back != tt.d {
					t.Errorf("ParseDuration(FormatDuration(%v)) = %v, %v; want a round trip", tt.d, back, err)
				}
			}
		})
	}
}

func TestParseSource(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		requester bool
		want      Source
		wantErr   string
	}{
		{"manager", "manager", false, Source{Kind: SourceManager}, ""},
		{"owners", " owners ", false, Source{Kind: SourceOwners}, ""},
		{"team", "team:support", false, Source{Kind: SourceTeam, Ref: "support"}, ""},
		{"user", "user:U0BOB0001", false, Source{Kind: SourceUser, Ref: "U0BOB0001"}, ""},
		{"usergroup", "usergroup:S0HRTEAM1", false, Source{Kind: SourceUsergroup, Ref: "S0HRTEAM1"}, ""},
		{"everyone is no approver", "everyone", false, Source{}, "is not an approver source; use manager, owners"},
		{"manager with ref", "manager:x", false, Source{}, "is not an approver source"},
		{"team without name", "team:", false, Source{}, "is not an approver source"},
		{"unknown", "boss", false, Source{}, "is not an approver source"},

		{"requester team", "team:support", true, Source{Kind: SourceTeam, Ref: "support"}, ""},
		{"requester user", "user:U0ALICE01", true, Source{Kind: SourceUser, Ref: "U0ALICE01"}, ""},
		{"requester usergroup", "usergroup:S1", true, Source{Kind: SourceUsergroup, Ref: "S1"}, ""},
		{"requester everyone", "everyone", true, Source{Kind: SourceEveryone}, ""},
		{"manager is no requester", "manager", true, Source{}, "is not a requester; use team:NAME"},
		{"owners is no requester", "owners", true, Source{}, "is not a requester"},
		{"everyone with ref", "everyone:x", true, Source{}, "is not a requester"},
		{"empty requester", "", true, Source{}, "is not a requester"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSource(tt.in, tt.requester)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSource(%q, %v) = %v, %v; want error containing %q", tt.in, tt.requester, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSource(%q, %v): %v", tt.in, tt.requester, err)
			}
			if got != tt.want {
				t.Errorf("ParseSource(%q, %v) = %+v, want %+v", tt.in, tt.requester, got, tt.want)
			}
			if back, err := ParseSource(got.String(), tt.requester); err != nil || back != got {
				t.Errorf("ParseSource(String()) = %v, %v; want a round trip of %v", back, err, got)
			}
		})
	}
}

func TestParseAndFormatID(t *testing.T) {
	ok := []struct {
		in   string
		want uint64
	}{
		{"AR-1042", 1042}, {"ar-1042", 1042}, {" AR-7 ", 7}, {"1042", 1042}, {FormatID(99), 99},
	}
	for _, tt := range ok {
		got, err := ParseID(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseID(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "AR-", "AR-0", "AR-x1", "AR-1-2", "BR-12", "-5", "AR--5", "AR-99999999999999999999999"} {
		_, err := ParseID(in)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseID(%q): err = %v, want ErrInvalid", in, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "AR-1042") {
			t.Errorf("ParseID(%q) message %q should show what an ID looks like", in, msg)
		}
	}
	if got := FormatID(1042); got != "AR-1042" {
		t.Errorf("FormatID(1042) = %q", got)
	}
}

func TestEffectiveDuration(t *testing.T) {
	role := &Role{ID: "viewer", DefaultDuration: 2 * time.Hour, MaxDuration: 8 * time.Hour}
	tests := []struct {
		name    string
		in      time.Duration
		want    time.Duration
		wantErr string
	}{
		{"default", 0, 2 * time.Hour, ""},
		{"within max", 3 * time.Hour, 3 * time.Hour, ""},
		{"exactly max", 8 * time.Hour, 8 * time.Hour, ""},
		{"seconds are fine", 5 * time.Second, 5 * time.Second, ""},
		{"over max names the limit", 9 * time.Hour, 0, "9h is longer than the maximum for crm viewer, which is 8h."},
		{"negative", -time.Minute, 0, "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := role.EffectiveDuration("crm", tt.in)
			if tt.wantErr != "" {
				var e *Error
				if !errors.As(err, &e) || e.Kind != ErrInvalid || !strings.Contains(e.Message, tt.wantErr) {
					t.Fatalf("EffectiveDuration(%v) = %v, %v; want *Error ErrInvalid containing %q", tt.in, got, err, tt.wantErr)
				}
				if got != 0 {
					t.Errorf("EffectiveDuration(%v) = %v with an error; no silent clamp", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("EffectiveDuration(%v) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestEntitlementKey(t *testing.T) {
	a := Entitlement{Connector: "okta", Params: map[string]string{"group_id": "00g1", "app": "crm", "z": "1"}, Person: "U0ALICE01"}
	// Build b's map in the opposite order; Go map order is random anyway,
	// so also compute the key many times.
	b := Entitlement{Connector: "okta", Params: map[string]string{}, Person: "U0ALICE01"}
	for _, k := range []string{"z", "app", "group_id"} {
		b.Params[k] = a.Params[k]
	}
	want := a.Key()
	for i := 0; i < 50; i++ {
		if got := b.Key(); got != want {
			t.Fatalf("Key() not stable under param order: %q vs %q", got, want)
		}
	}
	differ := []Entitlement{
		{Connector: "okta2", Params: a.Params, Person: "U0ALICE01"},
		{Connector: "okta", Params: a.Params, Person: "U0BOB0001"},
		{Connector: "okta", Params: map[string]string{"group_id": "00g2", "app": "crm", "z": "1"}, Person: "U0ALICE01"},
		{Connector: "okta", Params: map[string]string{"group_id": "00g1", "app": "crm"}, Person: "U0ALICE01"},
		// Quoting keeps separators in values from colliding.
		{Connector: "okta", Params: map[string]string{"group_id": `00g1"|"app"="crm`, "z": "1"}, Person: "U0ALICE01"},
	}
	for _, e := range differ {
		if e.Key() == want {
			t.Errorf("%+v has the same key as %+v", e, a)
		}
	}
	if (Entitlement{Connector: "c", Person: "U1"}).Key() != (Entitlement{Connector: "c", Params: map[string]string{}, Person: "U1"}).Key() {
		t.Error("nil and empty params should give the same key")
	}
}

func TestLookup(t *testing.T) {
	rb := &Runbook{Systems: map[string]*System{
		"crm": {ID: "crm", Roles: map[string]*Role{"viewer": {ID: "viewer"}, "admin": {ID: "admin"}}},
		"hr":  {ID: "hr", Roles: map[string]*Role{}},
	}}
	if _, r, err := rb.Lookup("CRM", "Viewer"); err != nil || r.ID != "viewer" {
		t.Errorf("Lookup(CRM, Viewer) = %v, %v", r, err)
	}
	_, _, err := rb.Lookup("erp", "viewer")
	if msg := err.Error(); !errors.Is(err, ErrInvalid) || !strings.Contains(msg, "Systems: crm, hr.") {
		t.Errorf("unknown system: %v", err)
	}
	_, _, err = rb.Lookup("crm", "owner")
	if msg := err.Error(); !errors.Is(err, ErrInvalid) || !strings.Contains(msg, "Roles: admin, viewer.") {
		t.Errorf("unknown role: %v", err)
	}
}
