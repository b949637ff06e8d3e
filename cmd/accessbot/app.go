package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/accessbot/accessbot/access"
	"github.com/accessbot/accessbot/audit"
	"github.com/accessbot/accessbot/bot"
	"github.com/accessbot/accessbot/connectors"
	"github.com/accessbot/accessbot/connectors/entra"
	"github.com/accessbot/accessbot/connectors/google"
	"github.com/accessbot/accessbot/connectors/jira"
	"github.com/accessbot/accessbot/connectors/ldap"
	"github.com/accessbot/accessbot/connectors/looker"
	"github.com/accessbot/accessbot/connectors/manual"
	"github.com/accessbot/accessbot/connectors/memory"
	"github.com/accessbot/accessbot/connectors/metabase"
	"github.com/accessbot/accessbot/connectors/okta"
	"github.com/accessbot/accessbot/connectors/opsgenie"
	"github.com/accessbot/accessbot/connectors/pagerduty"
	"github.com/accessbot/accessbot/connectors/postgres"
	"github.com/accessbot/accessbot/connectors/salesforce"
	"github.com/accessbot/accessbot/connectors/scim"
	slackconn "github.com/accessbot/accessbot/connectors/slack"
	"github.com/accessbot/accessbot/connectors/webhook"
	"github.com/accessbot/accessbot/connectors/zendesk"
	"github.com/accessbot/accessbot/connectors/zendeskticket"
	"github.com/accessbot/accessbot/directory"
	"github.com/accessbot/accessbot/internal/wheel"
	"github.com/accessbot/accessbot/store"
)

// AppOptions adjusts how an App is wired; the zero value is production.
type AppOptions struct {
	Clock  access.Clock // default: wall clock
	Logger *slog.Logger // default: discard
	// Connectors replaces connector instances by name (demo and tests swap
	// real services for local ones).
	Connectors map[string]access.Connector
	// BotSleep replaces the bot's wait on Slack rate limits (tests).
	BotSleep func(ctx context.Context, d time.Duration) error
	// ReconcileEvery is the period of the reconcile pass (default 30 s).
	ReconcileEvery time.Duration
	// PaceInterval is the least wall time between two messages to one
	// Slack channel (default 1 s, Slack's pace; negative: none, for tests).
	PaceInterval time.Duration
	// WheelTick is the timer wheel's tick (default 10 ms).
	WheelTick time.Duration
	// NoWheelRun leaves the timer wheel to be advanced by the caller
	// (tests and the demo drive time themselves).
	NoWheelRun bool
	// StoreNoSync turns fsync off (tests only).
	StoreNoSync bool
	// AckBudget and Workers tune the bot (zero: bot defaults).
	AckBudget time.Duration
	Workers   int
	// ServiceConfig tweaks the lifecycle service (retry timing in tests).
	Service func(*access.ServiceConfig)
	// WrapConnector, if set, wraps every connector NewApp builds (the
	// sandbox records what live connectors did).
	WrapConnector func(name string, c access.Connector) access.Connector
	// WrapLifecycle, if set, wraps what the bot drives (tests inject
	// faults into Slack handlers with it).
	WrapLifecycle func(bot.Lifecycle) bot.Lifecycle
	// HTTP configures the connectors' shared HTTP client (zero: defaults).
	// Tests on a fake clock turn its inner, real-time retries off.
	HTTP connectors.HTTPOptions
}

// App is accessbot wired together: store, lifecycle service, timer wheel,
// Slack bot, connectors and the operations endpoints. cmd's run and demo,
// and the end-to-end tests, start exactly this.
type App struct {
	Config     *Config
	Store      *store.Store
	Service    *access.Service
	Bot        *bot.Bot
	Wheel      *wheel.Keyed
	Connectors map[string]access.Connector
	Metrics    *Metrics

	opts      AppOptions
	clock     access.Clock
	log       *slog.Logger
	auditFile *os.File
	listener  net.Listener
	digests   *access.Digests // owners' digests: RunDigests
	ready     chan struct{}   // closed once the lifecycle's jobs started and deadlines are armed
}

// newRegistry lists every connector type this build knows. ws holds the
// Slack connectors' defaults (the runbook's bot token and API URL) and
// installation the store's installation ID (webhook message IDs, DESIGN.md
// §6); their zero values serve validation, where no call is made.
func newRegistry(ws *slackconn.Workspace, installation string) *connectors.Registry {
	reg := connectors.NewRegistry()
	reg.Add("memory", memory.Factory)
	if installation != "" {
		reg.Add("webhook", webhook.NewFactory(installation))
	} else {
		reg.Add("webhook", webhook.Factory)
	}
	reg.Add("manual", manual.Factory)
	reg.Add(slackconn.ChannelType, ws.ChannelFactory)
	reg.Add(slackconn.UsergroupType, ws.UsergroupFactory)
	reg.Add(okta.Type, okta.Factory)
	reg.Add(google.Type, google.Factory)
	reg.Add(entra.Type, entra.Factory)
	reg.Add(scim.Type, scim.Factory)
	reg.Add("ldap_group", ldap.Factory)
	reg.Add("salesforce_permission_set", salesforce.Factory)
	reg.Add("zendesk", zendesk.Factory)
	reg.Add("metabase_group", metabase.Factory)
	reg.Add("looker_role", looker.Factory)
	reg.Add("postgres_role", postgres.Factory)
	reg.Add(pagerduty.Type, pagerduty.Factory)         // lookup: who is on call (auto_if_on_call)
	reg.Add(opsgenie.Type, opsgenie.Factory)           // lookup: who is on call (auto_if_on_call)
	reg.Add(jira.Type, jira.Factory)                   // lookup: ticket.verify
	reg.Add(zendeskticket.Type, zendeskticket.Factory) // lookup: ticket.verify
	return reg
}

// NewApp wires an App from a loaded configuration. It opens the store
// (failing fast if another process holds it) and builds every connector
// some system uses (failing on any configuration error), but connects to
// nothing.
func NewApp(cfg *Config, opts AppOptions) (*App, error) {
	a := &App{Config: cfg, opts: opts, clock: opts.Clock, log: opts.Logger, Connectors: map[string]access.Connector{}, ready: make(chan struct{})}
	if a.clock == nil {
		a.clock = access.ClockFunc(time.Now)
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.Metrics = NewMetrics()
	sopts := store.Options{Clock: a.clock, NoSync: opts.StoreNoSync}
	createdAudit := false
	if cfg.Audit.File != "" {
		_, statErr := os.Stat(cfg.Audit.File)
		f, err := os.OpenFile(cfg.Audit.File, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open audit file: %w", err)
		}
		createdAudit = os.IsNotExist(statErr)
		a.auditFile = f
		sopts.AuditMirror = f
	}
	st, err := store.Open(cfg.Store.Path, sopts)
	if err != nil {
		a.closeFiles()
		if createdAudit {
			_ = os.Remove(cfg.Audit.File) // leave nothing behind from a start that failed
		}
		return nil, err
	}
	a.Store = st
	if a.auditFile != nil {
		n, err := catchUpMirror(context.Background(), a.auditFile, st)
		if err != nil {
			a.Close()
			return nil, err
		}
		if n > 0 {
			a.log.Warn("audit file was behind the store (the process stopped abruptly, or the store ran with another audit file); caught up", "records", n)
		}
	}

	a.Bot = bot.New(bot.Config{
		AppToken: cfg.Slack.AppToken.Reveal(), BotToken: cfg.Slack.BotToken.Reveal(), APIURL: cfg.Slack.APIURL,
		Command: cfg.Slack.Command, Runbook: cfg.Runbook, Clock: a.clock, Logger: a.log,
		Sleep: opts.BotSleep, AckBudget: opts.AckBudget, Workers: opts.Workers, Metrics: a.Metrics,
		AuditExport: a.auditExport,
	})
	installation, err := installationID(st)
	if err != nil {
		a.Close()
		return nil, err
	}
	reg := newRegistry(&slackconn.Workspace{BotToken: cfg.Slack.BotToken.Reveal(), APIURL: cfg.Slack.APIURL}, installation)
	shared := connectors.NewHTTPClient(opts.HTTP)
	var problems []error
	used := cfg.usedConnectors()
	for name, cc := range cfg.Connectors {
		if c, ok := opts.Connectors[name]; ok {
			a.Connectors[name] = c
			continue
		}
		if !used[name] {
			continue // no system uses it: not built, its secrets not needed
		}
		raw := map[string]any{"type": cc.Type}
		for k, v := range cc.Raw {
			raw[k] = v
		}
		c, err := reg.Build(name, cc.Type, raw, connectors.Env{HTTP: shared, Clock: a.clock, State: st.KV(name)})
		if err != nil {
			problems = append(problems, err)
			continue
		}
		if opts.WrapConnector != nil {
			c = opts.WrapConnector(name, c)
		}
		a.Connectors[name] = c
	}
	if len(problems) > 0 {
		a.Close()
		return nil, errors.Join(problems...)
	}

	tick := opts.WheelTick
	if tick <= 0 {
		tick = 10 * time.Millisecond
	}
	var svc *access.Service
	a.Wheel = wheel.NewKeyed(wheel.Options{Tick: tick}, a.clock.Now(), func(id string) { svc.Enqueue(id) })
	a.digests = &access.Digests{Runbook: cfg.Runbook, KV: st.KV(digestKVNamespace), Store: st, Poster: a.Bot, Audit: storeAuditor{st}}
	jobs := append([]access.Job{a.digests.Job()}, access.RetentionJob(cfg.Audit.Retention, st.ApplyRetention)...)
	// The directory: Slack's lookups cached with bounded staleness (fresh
	// for decisions), managers from the identity provider when the runbook
	// names one, and the IdPs asked about suspended accounts.
	dopts := directory.Options{Clock: a.clock}
	checkers := map[string]access.AccountChecker{}
	if n := cfg.Runbook.Managers.IdP; n != "" {
		ml, ok := a.Connectors[n].(access.ManagerLookup)
		if !ok {
			a.Close()
			return nil, fmt.Errorf("directory.managers.source: connector %q cannot read managers", n)
		}
		dopts.Managers = ml
		if ac, ok := a.Connectors[n].(access.AccountChecker); ok {
			checkers[n] = ac
		}
	}
	for _, n := range cfg.Offboarding {
		ac, ok := a.Connectors[n].(access.AccountChecker)
		if !ok {
			a.Close()
			return nil, fmt.Errorf("directory.offboarding: connector %q cannot tell whether an account is active", n)
		}
		checkers[n] = ac
	}
	dir := directory.New(a.Bot, dopts)
	a.Bot.UseDirectory(dir)
	scfg := access.ServiceConfig{
		Runbook: cfg.Runbook, Store: st, Directory: dir, Notifier: a.Bot, Connectors: a.Connectors,
		AccountCheckers: checkers,
		Scheduler:       a.Wheel, Clock: a.clock, Logger: a.log, Observer: a.Metrics, Jobs: jobs,
		ReconcileEvery: opts.ReconcileEvery, PaceInterval: opts.PaceInterval,
	}
	if opts.Service != nil {
		opts.Service(&scfg)
	}
	svc = access.NewService(scfg)
	a.Service = svc
	var lc bot.Lifecycle = svc
	if opts.WrapLifecycle != nil {
		lc = opts.WrapLifecycle(lc)
	}
	a.Bot.Attach(lc)
	return a, nil
}

// Run serves until ctx is done: it records the configuration in the audit
// log, then runs the lifecycle (access.Service.Run: deadlines armed from
// the store's index, overdue work caught up, workers, the paced notice
// sender, the periodic reconcile, digests and retention), the Slack bot,
// the timer wheel and the operations endpoints. It returns nil after a
// clean shutdown.
func (a *App) Run(ctx context.Context) error {
	if a.Config.HTTP.Listen != "" {
		ln, err := net.Listen("tcp", a.Config.HTTP.Listen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", a.Config.HTTP.Listen, err)
		}
		a.listener = ln
	}
	// Recorded once the process can actually serve (a start that fails on
	// a busy port records nothing).
	if _, err := a.Store.AppendAudit(ctx, audit.Record{Event: "config_loaded", Actor: access.ActorBot, Note: "runbook " + a.Config.Runbook.Hash}); err != nil {
		if a.listener != nil {
			a.listener.Close()
		}
		return fmt.Errorf("audit config: %w", err)
	}
	g, ctx := errgroup.WithContext(ctx)
	// The bot serves while the lifecycle arms what the store holds: a
	// request created meanwhile is armed by its own transition, and its
	// notices are in its outbox, so nothing races.
	g.Go(func() error { return a.Service.Run(ctx, a.ready) })
	g.Go(func() error { return a.Bot.Run(ctx) })
	if !a.opts.NoWheelRun {
		g.Go(func() error { a.Wheel.Run(ctx, a.clock); return nil })
	}
	if a.listener != nil {
		srv := &http.Server{Handler: a.opsHandler(), ReadHeaderTimeout: 5 * time.Second}
		g.Go(func() error {
			if err := srv.Serve(a.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		g.Go(func() error {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	return g.Wait()
}

// Ready is closed once Run has started the lifecycle: periodic jobs have
// recorded where they start and every deadline in the store is armed.
func (a *App) Ready() <-chan struct{} { return a.ready }

// Addr is the operations listener's address, once Run has started it.
func (a *App) Addr() string {
	if a.listener == nil {
		return ""
	}
	return a.listener.Addr().String()
}

// Close releases the store and files. Call after Run returned.
func (a *App) Close() error {
	var err error
	if a.Store != nil {
		err = a.Store.Close()
	}
	a.closeFiles()
	return err
}

func (a *App) closeFiles() {
	if a.auditFile != nil {
		_ = a.auditFile.Close()
	}
}

// opsHandler serves /healthz (alive), /readyz (Slack connected and store
// writable) and /metrics (Prometheus).
func (a *App) opsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		var problems []string
		if !a.Bot.Connected() {
			problems = append(problems, "slack socket not connected")
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := a.Store.Ping(ctx); err != nil {
			problems = append(problems, "store not writable: "+err.Error())
		}
		if len(problems) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			for _, p := range problems {
				fmt.Fprintln(w, p)
			}
			return
		}
		io.WriteString(w, "ready\n")
	})
	mux.Handle("/metrics", a.Metrics.Handler())
	return mux
}

// auditExport is `/access audit SYSTEM [SINCE]`: the system's audit records
// since a time, as CSV.
func (a *App) auditExport(ctx context.Context, system string, since time.Time) (string, []byte, error) {
	var recs []audit.Record
	err := a.Store.AuditRecords(ctx, func(rec audit.Record) bool {
		if rec.System == system && !rec.Time.Before(since) {
			recs = append(recs, rec)
		}
		return true
	})
	if err != nil {
		return "", nil, err
	}
	content, err := encodeAudit(recs, "csv", storeTickets(ctx, a.Store.Get, recs))
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("audit-%s-%s.csv", system, a.clock.Now().UTC().Format("20060102-1504")), content, nil
}

// installationID is the store's installation ID, a random ID made when the
// store was created (and kept by store migrate): webhook message IDs are
// unique per installation with it.
func installationID(st any) (string, error) {
	is, ok := st.(interface {
		InstallationID(context.Context) (string, error)
	})
	if !ok {
		return "local", nil
	}
	id, err := is.InstallationID(context.Background())
	if err != nil {
		return "", fmt.Errorf("read the store's installation ID: %w", err)
	}
	return id, nil
}
