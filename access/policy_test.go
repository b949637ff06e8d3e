package access

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func policyDirectory() *fakeDirectory {
	return &fakeDirectory{
		fields: map[string]map[string]string{
			"U0ERIN001": {"Xf0MANAGER": "U0FRANK01"},
			"U0GINA001": {"Xf0MANAGER": "<@U0HANK001|hank>"},
			"U0IVAN001": {"Xf0MANAGER": " hank@example.com "},
			"U0JUDY001": {"Xf0MANAGER": "nobody@example.com"},
			"U0KATE001": {"Xf0MANAGER": "just some text"},
		},
		usergroups: map[string][]string{
			"S0HRTEAM1": {"U0HR00001", "U0HR00002"},
			"S0EMPTY01": {},
		},
		emails: map[string]string{
			"dave@example.com": "U0DAVE001",
			"hank@example.com": "U0HANK001",
		},
	}
}

func policyRunbook() *Runbook {
	return &Runbook{
		Admins: []string{"U0ADMIN01", "U0ADMIN02"},
		Managers: ManagerSource{
			Static:       map[string]string{"U0ALICE01": "U0BOB0001", "U0BOB0001": "U0CAROL01"},
			ProfileField: "Xf0MANAGER",
		},
		Teams: map[string]Team{
			"support": {Members: []string{"U0ALICE01", "dave@example.com", "ghost@example.com"}},
			"hr":      {Usergroup: "S0HRTEAM1"},
			"mixed":   {Members: []string{"U0CAROL01"}, Usergroup: "S0HRTEAM1"},
		},
	}
}

func TestMayRequest(t *testing.T) {
	ctx := context.Background()
	rb, dir := policyRunbook(), policyDirectory()
	tests := []struct {
		name       string
		requesters []string
		user       string
		want       bool
	}{
		{"team member by ID", []string{"team:support"}, "U0ALICE01", true},
		{"team member by email", []string{"team:support"}, "U0DAVE001", true},
		{"not in team", []string{"team:support"}, "U0BOB0001", false},
		{"team via usergroup", []string{"team:hr"}, "U0HR00002", true},
		{"team members and usergroup", []string{"team:mixed"}, "U0CAROL01", true},
		{"usergroup", []string{"usergroup:S0HRTEAM1"}, "U0HR00001", true},
		{"not in usergroup", []string{"usergroup:S0HRTEAM1"}, "U0ALICE01", false},
		{"everyone", []string{"everyone"}, "U0ANYONE1", true},
		{"user", []string{"user:U0ZED0001"}, "U0ZED0001", true},
		{"other user", []string{"user:U0ZED0001"}, "U0ALICE01", false},
		{"any of several", []string{"team:hr", "user:U0ZED0001"}, "U0ZED0001", true},
		{"nobody", nil, "U0ALICE01", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			role := &Role{ID: "viewer"}
			for _, s := range tt.requesters {
				p, err := ParseSource(s, true)
				if err != nil {
					t.Fatal(err)
				}
				role.Requesters = append(role.Requesters, p)
			}
			got, err := rb.MayRequest(ctx, dir, tt.user, role)
			if err != nil {
				t.Fatalf("MayRequest: %v", err)
			}
			if got != tt.want {
				t.Errorf("MayRequest(%s, %v) = %v, want %v", tt.user, tt.requesters, got, tt.want)
			}
		})
	}
	t.Run("unknown team is an error", func(t *testing.T) {
		role := &Role{Requesters: []Principal{{Kind: SourceTeam, Ref: "nope"}}}
		if _, err := rb.MayRequest(ctx, dir, "U0ALICE01", role); err == nil {
			t.Error("MayRequest with an unknown team: no error")
		}
	})
}

func TestManager(t *testing.T) {
	ctx := context.Background()
	rb, dir := policyRunbook(), policyDirectory()
	tests := []struct{ user, want string }{
		{"U0ALICE01", "U0BOB0001"}, // static map
		{"U0ERIN001", "U0FRANK01"}, // profile field holding an ID
		{"U0GINA001", "U0HANK001"}, // profile field holding a mention
		{"U0IVAN001", "U0HANK001"}, // profile field holding an email
		{"U0JUDY001", ""},          // unknown email names nobody
		{"U0KATE001", ""},          // free text names nobody
		{"U0NOBODY1", ""},          // nothing on record
	}
	for _, tt := range tests {
		got, err := rb.Manager(ctx, dir, tt.user)
		if err != nil || got != tt.want {
			t.Errorf("Manager(%s) = %q, %v; want %q", tt.user, got, err, tt.want)
		}
	}
	if got, _ := rb.Manager(ctx, nil, "U0ERIN001"); got != "" {
		t.Errorf("Manager without a directory = %q, want none", got)
	}
}

func step(sources []string, min int) StepPolicy {
	sp := StepPolicy{Min: min}
	for _, s := range sources {
		src, err := ParseSource(s, false)
		if err != nil {
			panic(err)
		}
		sp.Sources = append(sp.Sources, src)
	}
	return sp
}

func TestResolveStep(t *testing.T) {
	ctx := context.Background()
	dir := policyDirectory()
	tests := []struct {
		name      string
		owners    []string
		admins    []string
		step      StepPolicy
		requester string
		want      Step
		wantErr   string
	}{
		{
			name: "manager from static map", step: step([]string{"manager"}, 0), requester: "U0ALICE01",
			want: Step{Approvers: []string{"U0BOB0001"}, Min: 1, Sources: "manager"},
		},
		{
			name: "manager from profile field ID", step: step([]string{"manager"}, 1), requester: "U0ERIN001",
			want: Step{Approvers: []string{"U0FRANK01"}, Min: 1, Sources: "manager"},
		},
		{
			name: "manager from profile mention", step: step([]string{"manager"}, 1), requester: "U0GINA001",
			want: Step{Approvers: []string{"U0HANK001"}, Min: 1, Sources: "manager"},
		},
		{
			name: "manager from profile email", step: step([]string{"manager"}, 1), requester: "U0IVAN001",
			want: Step{Approvers: []string{"U0HANK001"}, Min: 1, Sources: "manager"},
		},
		{
			name: "owners", owners: []string{"U0CAROL01", "U0OWNER02"}, step: step([]string{"owners"}, 1), requester: "U0ALICE01",
			want: Step{Approvers: []string{"U0CAROL01", "U0OWNER02"}, Min: 1, Sources: "owners"},
		},
		{
			name: "team by ID and email, unknown email skipped", step: step([]string{"team:support"}, 1), requester: "U0ZED0001",
			want: Step{Approvers: []string{"U0ALICE01", "U0DAVE001"}, Min: 1, Sources: "team:support"},
		},
		{
			name: "user", step: step([]string{"user:U0ZED0001"}, 1), requester: "U0ALICE01",
			want: Step{Approvers: []string{"U0ZED0001"}, Min: 1, Sources: "user:U0ZED0001"},
		},
		{
			name: "usergroup", step: step([]string{"usergroup:S0HRTEAM1"}, 1), requester: "U0ALICE01",
			want: Step{Approvers: []string{"U0HR00001", "U0HR00002"}, Min: 1, Sources: "usergroup:S0HRTEAM1"},
		},
		{
			name: "union without duplicates", owners: []string{"U0BOB0001", "U0CAROL01"},
			step: step([]string{"manager", "owners", "user:U0CAROL01", "team:mixed", "usergroup:S0HRTEAM1"}, 1), requester: "U0ALICE01",
			want: Step{Approvers: []string{"U0BOB0001", "U0CAROL01", "U0HR00001", "U0HR00002"}, Min: 1,
				Sources: "manager, owners, user:U0CAROL01, team:mixed, usergroup:S0HRTEAM1"},
		},
		{
			name: "requester who is an owner is not an approver", owners: []string{"U0ALICE01", "U0CAROL01"},
			step: step([]string{"owners"}, 1), requester: "U0ALICE01",
			want: Step{Approvers: []string{"U0CAROL01"}, Min: 1, Sources: "owners"},
		},
		{
			name: "requester in own approver team", step: step([]string{"team:support"}, 1), requester: "U0ALICE01",
			want: Step{Approvers: []string{"U0DAVE001"}, Min: 1, Sources: "team:support"},
		},
		{
			name: "requester is own manager falls back to owners", owners: []string{"U0CAROL01"},
			step: step([]string{"manager"}, 1), requester: "U0SELF001",
			want: Step{Approvers: []string{"U0CAROL01"}, Min: 1, Sources: "manager", Fallback: "owners"},
		},
		{
			name: "no manager falls back to owners", owners: []string{"U0CAROL01"},
			step: step([]string{"manager"}, 1), requester: "U0NOBODY1",
			want: Step{Approvers: []string{"U0CAROL01"}, Min: 1, Sources: "manager", Fallback: "owners"},
		},
		{
			name: "only owner is the requester falls back to admins", owners: []string{"U0ALICE01"}, admins: []string{"U0ADMIN01"},
			step: step([]string{"owners"}, 1), requester: "U0ALICE01",
			want: Step{Approvers: []string{"U0ADMIN01"}, Min: 1, Sources: "owners", Fallback: "admins"},
		},
		{
			name: "empty usergroup falls back", owners: []string{"U0CAROL01"},
			step: step([]string{"usergroup:S0EMPTY01"}, 1), requester: "U0ALICE01",
			want: Step{Approvers: []string{"U0CAROL01"}, Min: 1, Sources: "usergroup:S0EMPTY01", Fallback: "owners"},
		},
		{
			name: "two of overlapping sources", owners: []string{"U0BOB0001", "U0CAROL01"},
			step: step([]string{"manager", "owners"}, 2), requester: "U0ALICE01",
			want: Step{Approvers: []string{"U0BOB0001", "U0CAROL01"}, Min: 2, Sources: "manager, owners"},
		},
		{
			name: "overlap leaves too few: owners then admins fill up", owners: []string{"U0BOB0001"}, admins: []string{"U0ADMIN01", "U0BOB0001"},
			step: step([]string{"manager", "owners"}, 2), requester: "U0ALICE01",
			want: Step{Approvers: []string{"U0BOB0001", "U0ADMIN01"}, Min: 2, Sources: "manager, owners", Fallback: "admins"},
		},
		{
			name: "requester is an admin: never their own fallback", owners: []string{"U0ALICE01"}, admins: []string{"U0ALICE01"},
			step: step([]string{"owners"}, 1), requester: "U0ALICE01",
			wantErr: "needs 1 approver(s) other than the requester, but only 0",
		},
		{
			name: "too few even with fallbacks", owners: []string{"U0CAROL01"}, admins: []string{"U0CAROL01"},
			step: step([]string{"owners"}, 2), requester: "U0ALICE01",
			wantErr: "Step 1 of crm viewer needs 2 approver(s) other than the requester, but only 1 can be found",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rb := policyRunbook()
			rb.Managers.Static["U0SELF001"] = "U0SELF001"
			rb.Admins = tt.admins
			sys := &System{ID: "crm", Owners: tt.owners}
			role := &Role{ID: "viewer", Approval: Approval{Steps: []StepPolicy{tt.step}}}
			got, err := rb.ResolveStep(ctx, dir, sys, role, 0, tt.requester)
			if tt.wantErr != "" {
				var e *Error
				if !errors.As(err, &e) || !errors.Is(err, ErrForbidden) || !strings.Contains(e.Message, tt.wantErr) {
					t.Fatalf("ResolveStep = %+v, %v; want ErrForbidden containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ResolveStep: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ResolveStep (-want +got):\n%s", diff)
			}
			if contains(got.Approvers, tt.requester) {
				t.Errorf("the requester %s is an approver of their own request", tt.requester)
			}
		})
	}
}

func TestResolveStepDirectoryError(t *testing.T) {
	rb := policyRunbook()
	sys := &System{ID: "crm", Owners: []string{"U0CAROL01"}}
	role := &Role{ID: "viewer", Approval: Approval{Steps: []StepPolicy{step([]string{"usergroup:S0MISSING"}, 1)}}}
	_, err := rb.ResolveStep(context.Background(), policyDirectory(), sys, role, 0, "U0ALICE01")
	if err == nil || !strings.Contains(err.Error(), "usergroup:S0MISSING") {
		t.Errorf("ResolveStep with a failing directory: %v; want an error naming the source", err)
	}
}

func TestStepMet(t *testing.T) {
	steps := []Step{{Approvers: []string{"A", "B", "C"}, Min: 2}, {Approvers: []string{"D"}, Min: 1}}
	dec := func(step int, actor string, approve bool) Decision {
		return Decision{Step: step, Actor: actor, Approve: approve}
	}
	tests := []struct {
		name      string
		decisions []Decision
		step      int
		want      bool
	}{
		{"none", nil, 0, false},
		{"one of two", []Decision{dec(0, "A", true)}, 0, false},
		{"same approver twice", []Decision{dec(0, "A", true), dec(0, "A", true)}, 0, false},
		{"non-approver does not count", []Decision{dec(0, "A", true), dec(0, "X", true)}, 0, false},
		{"approval for another step does not count", []Decision{dec(0, "A", true), dec(1, "B", true)}, 0, false},
		{"a deny is not an approval", []Decision{dec(0, "A", true), dec(0, "B", false)}, 0, false},
		{"two distinct", []Decision{dec(0, "A", true), dec(0, "X", true), dec(0, "C", true)}, 0, true},
		{"second step", []Decision{dec(0, "A", true), dec(0, "B", true), dec(1, "D", true)}, 1, true},
		{"second step approver only counts there", []Decision{dec(0, "D", true)}, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Request{Steps: steps, Decisions: tt.decisions}
			if got := StepMet(r, tt.step); got != tt.want {
				t.Errorf("StepMet(step %d) = %v, want %v", tt.step, got, tt.want)
			}
		})
	}
}
