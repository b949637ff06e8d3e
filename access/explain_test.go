package access

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// explainRunbook is policyRunbook with a CRM system whose roles exercise
// every part of an explanation.
func explainRunbook(t *testing.T) *Runbook {
	t.Helper()
	rb := policyRunbook()
	src := func(s string, requester bool) Source {
		p, err := ParseSource(s, requester)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	rb.Systems = map[string]*System{
		"crm": {ID: "crm", Owners: []string{"U0CAROL01", "U0ERIN001"}, Roles: map[string]*Role{
			"viewer": {
				ID: "viewer", Requesters: []Principal{src("team:hr", true), src("team:support", true)},
				Approval: Approval{Steps: []StepPolicy{
					{Sources: []Source{src("manager", false)}, Min: 1},
					{Sources: []Source{src("owners", false)}, Min: 1},
				}},
				DefaultDuration: 2 * time.Hour, MaxDuration: 8 * time.Hour, ApprovalTimeout: 24 * time.Hour,
				ReasonRequired: true,
				Origin: RoleOrigin{DefaultDuration: "systems.crm.roles.viewer.default_duration", MaxDuration: "defaults.max_duration",
					ApprovalTimeout: "built-in default", Reason: "built-in default"},
			},
			"auto": {
				ID: "auto", Requesters: []Principal{src("everyone", true)}, Approval: Approval{Auto: true},
				DefaultDuration: time.Hour, MaxDuration: 4 * time.Hour,
			},
			"double": {
				ID: "double", Requesters: []Principal{src("everyone", true)},
				Approval:        Approval{Steps: []StepPolicy{{Sources: []Source{src("user:U0ZED0001", false)}, Min: 9}}},
				DefaultDuration: time.Hour, MaxDuration: 4 * time.Hour,
			},
		}},
	}
	return rb
}

func TestExplainAllowedWithFallback(t *testing.T) {
	ctx := context.Background()
	rb, dir := explainRunbook(t), policyDirectory()
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	// Dave is in team support by email and has no manager on record.
	ex, err := rb.Explain(ctx, dir, ExplainInput{Requester: "U0DAVE001", System: "CRM", Role: "viewer", Duration: 3 * time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	want := &Explanation{
		Requester: "U0DAVE001", System: "crm", Role: "viewer", Now: now, Allowed: true,
		Requesters: []RuleMatch{
			{Rule: "team:hr", Why: "not a member of team hr (2 member(s) found, user group S0HRTEAM1 included)"},
			{Rule: "team:support", Matched: true, Why: "a member of team support (2 member(s))"},
		},
		MatchedRule: "team:support",
		Duration: DurationExplanation{Requested: 3 * time.Hour, Effective: 3 * time.Hour,
			Default: 2 * time.Hour, DefaultFrom: "systems.crm.roles.viewer.default_duration",
			Max: 8 * time.Hour, MaxFrom: "defaults.max_duration",
			ApprovalTimeout: 24 * time.Hour, ApprovalTimeoutFrom: "built-in default"},
		ReasonRequired: true, ReasonFrom: "built-in default",
		Distinct: true,
		Steps: []StepExplanation{
			{Number: 1, Min: 1, Sources: []SourceExplanation{{Source: "manager", People: []string{}, Note: "Slack profile field Xf0MANAGER is empty or names nobody"}},
				Fallback: "owners", Approvers: []string{"U0CAROL01", "U0ERIN001"}},
			// Separation of duties: the owner who approves step 1 is not
			// asked for step 2.
			{Number: 2, Min: 1, Sources: []SourceExplanation{{Source: "owners", People: []string{"U0CAROL01", "U0ERIN001"}}},
				Approvers: []string{"U0CAROL01", "U0ERIN001"}, Shared: []string{"U0CAROL01", "U0ERIN001"}},
		},
	}
	if diff := cmp.Diff(want, ex); diff != "" {
		t.Errorf("Explain (-want +got):\n%s", diff)
	}
}

func TestExplainRequesterExcluded(t *testing.T) {
	ctx := context.Background()
	rb, dir := explainRunbook(t), policyDirectory()
	rb.Teams["support"] = Team{Members: []string{"U0ALICE01", "U0CAROL01"}}
	ex, err := rb.Explain(ctx, dir, ExplainInput{Requester: "U0CAROL01", System: "crm", Role: "viewer"})
	if err != nil {
		t.Fatal(err)
	}
	owners := ex.Steps[1]
	if diff := cmp.Diff([]string{"U0ERIN001"}, owners.Approvers); diff != "" {
		t.Errorf("owners step approvers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"U0CAROL01"}, owners.Excluded); diff != "" {
		t.Errorf("owners step excluded (-want +got):\n%s", diff)
	}
	if ex.Duration.Effective != 2*time.Hour {
		t.Errorf("effective duration %v, want the default 2h", ex.Duration.Effective)
	}
}

// The refusal is exactly what Service.Check (CheckRequest) returns.
func TestExplainRefusalIsChecksError(t *testing.T) {
	ctx := context.Background()
	rb, dir := explainRunbook(t), policyDirectory()
	for _, in := range []ExplainInput{
		{Requester: "U0BOB0001", System: "crm", Role: "viewer"},                          // no rule matches
		{Requester: "U0ALICE01", System: "crm", Role: "viewer", Duration: 9 * time.Hour}, // over the max
		{Requester: "U0ALICE01", System: "nope", Role: "viewer"},                         // no system
		{Requester: "U0ALICE01", System: "crm", Role: "nope"},                            // no role
		{Requester: "U0ALICE01", System: "crm", Role: "viewer", Reason: strings.Repeat("x", MaxReasonRunes+1)},
	} {
		ex, err := rb.Explain(ctx, dir, in)
		if err != nil {
			t.Fatal(err)
		}
		_, _, _, checkErr := rb.CheckRequest(ctx, dir, SubmitInput{Requester: in.Requester, System: in.System, Role: in.Role, Duration: in.Duration, Reason: in.Reason})
		if checkErr == nil || ex.Allowed || ex.Refusal.Error() != checkErr.Error() || ex.RefusalText != checkErr.Error() {
			t.Errorf("%+v: refusal %v (allowed %v), Check says %v", in, ex.Refusal, ex.Allowed, checkErr)
		}
	}
	ex, _ := rb.Explain(ctx, dir, ExplainInput{Requester: "U0BOB0001", System: "crm", Role: "viewer"})
	if ex.MatchedRule != "" || len(ex.Requesters) != 2 || ex.Requesters[1].Why != "not a member of team support (2 member(s))" {
		t.Errorf("rules for a refused requester: %+v", ex.Requesters)
	}
	if len(ex.Steps) != 2 {
		t.Errorf("steps are explained even when refused, got %d", len(ex.Steps))
	}
	// A missing reason is not a refusal in explain; Check refuses it.
	ex, _ = rb.Explain(ctx, dir, ExplainInput{Requester: "U0ALICE01", System: "crm", Role: "viewer"})
	if !ex.Allowed || !ex.ReasonRequired {
		t.Errorf("missing reason: allowed %v, reason required %v", ex.Allowed, ex.ReasonRequired)
	}
}

func TestExplainAutoAndImpossibleStep(t *testing.T) {
	ctx := context.Background()
	rb, dir := explainRunbook(t), policyDirectory()
	ex, err := rb.Explain(ctx, dir, ExplainInput{Requester: "U0ANY0001", System: "crm", Role: "auto"})
	if err != nil {
		t.Fatal(err)
	}
	if !ex.Auto || !ex.Allowed || len(ex.Steps) != 0 || ex.MatchedRule != "everyone" {
		t.Errorf("auto: %+v", ex)
	}
	ex, err = rb.Explain(ctx, dir, ExplainInput{Requester: "U0ANY0001", System: "crm", Role: "double"})
	if err != nil {
		t.Fatal(err)
	}
	_, stepErr := rb.ResolveStep(ctx, dir, rb.Systems["crm"], rb.Systems["crm"].Roles["double"], 0, "U0ANY0001")
	if ex.Allowed || stepErr == nil || ex.RefusalText != stepErr.Error() || ex.Steps[0].Error != stepErr.Error() {
		t.Errorf("impossible step: allowed %v, refusal %q, step error %q, ResolveStep %v", ex.Allowed, ex.RefusalText, ex.Steps[0].Error, stepErr)
	}
}

func TestExplainDirectoryFailure(t *testing.T) {
	ctx := context.Background()
	rb, dir := explainRunbook(t), policyDirectory()
	delete(dir.usergroups, "S0HRTEAM1") // the fake fails on unknown groups, as Slack does
	ex, err := rb.Explain(ctx, dir, ExplainInput{Requester: "U0ALICE01", System: "crm", Role: "viewer"})
	if err == nil || ex != nil || !errors.Is(err, ErrNotFound) {
		t.Fatalf("Explain with a failing directory = %v, %v", ex, err)
	}
}

func TestStaticDirectory(t *testing.T) {
	ctx := context.Background()
	d, err := NewStaticDirectory([]StaticPerson{
		{ID: "U0ALICE01", Email: "Alice@Example.com", Manager: "bob@example.com", Usergroups: []string{"S0HR"}},
		{ID: "U0BOB0001", Email: "bob@example.com", Usergroups: []string{"S0HR", "S0MGR"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := d.UserByEmail(ctx, "alice@example.COM"); id != "U0ALICE01" {
		t.Errorf("UserByEmail alice = %q", id)
	}
	if id, _ := d.UserByEmail(ctx, "Zed@example.com"); id != "zed@example.com" {
		t.Errorf("UserByEmail of an unlisted email = %q, want the email itself", id)
	}
	if ms, _ := d.UsergroupMembers(ctx, "S0HR"); !cmp.Equal(ms, []string{"U0ALICE01", "U0BOB0001"}) {
		t.Errorf("S0HR = %v", ms)
	}
	if m, _ := d.ProfileField(ctx, "U0ALICE01", "Xf0ANY"); m != "bob@example.com" {
		t.Errorf("manager = %q", m)
	}
	if id, ok := d.Listed("BOB@example.com"); !ok || id != "U0BOB0001" {
		t.Errorf("Listed bob = %q %v", id, ok)
	}
	if _, ok := d.Listed("U0NOBODY1"); ok {
		t.Error("Listed an unknown ID")
	}
	rb := &Runbook{Managers: ManagerSource{ProfileField: "Xf0MANAGER"}}
	if m, _ := rb.Manager(ctx, d, "U0ALICE01"); m != "U0BOB0001" {
		t.Errorf("manager through the runbook = %q", m)
	}
	for _, bad := range [][]StaticPerson{
		{{ID: ""}},
		{{ID: "U0A"}, {ID: "U0A"}},
		{{ID: "U0A", Email: "a@x.io"}, {ID: "U0B", Email: "A@x.io"}},
	} {
		if _, err := NewStaticDirectory(bad); err == nil {
			t.Errorf("NewStaticDirectory(%v) accepted", bad)
		}
	}
}

func TestResolveEmails(t *testing.T) {
	ctx := context.Background()
	dir := policyDirectory()
	rb := &Runbook{Admins: []string{"U0ADMIN01", "dave@example.com"}, Systems: map[string]*System{
		"crm": {ID: "crm", Owners: []string{"hank@example.com", "U0CAROL01"}},
		"hr":  {ID: "hr", Owners: []string{"ghost@example.com"}},
	}}
	err := rb.ResolveEmails(ctx, dir)
	if err == nil || err.Error() != "systems.hr.owners[0]: no Slack user has the email ghost@example.com" {
		t.Errorf("ResolveEmails = %v", err)
	}
	if !cmp.Equal(rb.Admins, []string{"U0ADMIN01", "U0DAVE001"}) || !cmp.Equal(rb.Systems["crm"].Owners, []string{"U0HANK001", "U0CAROL01"}) {
		t.Errorf("resolved admins %v, crm owners %v", rb.Admins, rb.Systems["crm"].Owners)
	}
}
