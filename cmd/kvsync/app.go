package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kvsync/kvsync/internal/alert"
	"github.com/kvsync/kvsync/internal/auth"
	"github.com/kvsync/kvsync/internal/config"
	"github.com/kvsync/kvsync/internal/dispatch"
	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/metrics"
	"github.com/kvsync/kvsync/internal/redact"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
)

// app is everything the subcommands share, built once from the configuration.
type app struct {
	cfg      config.Config
	log      *slog.Logger
	pool     *pgxpool.Pool // nil with the PostgREST backend
	store    *store.Store
	keys     *secret.Keyring
	kiotviet kiotviet.Config
	engine   *syncer.Engine
	alerts   *alert.Notifier
	metrics  *metrics.Metrics
	worker   string
}

// loadConfig reads .env (when present) under the real environment and validates it once.
func loadConfig(e env) (config.Config, error) {
	getenv, err := config.LoadDotEnv(".env", e.getenv)
	if err != nil {
		return config.Config{}, err
	}
	return config.Load(getenv)
}

// newApp connects to the database and builds the engine. needKeys is false for commands that never
// touch a credential's secrets (status, migrate).
func newApp(ctx context.Context, e env, needKeys bool) (*app, error) {
	cfg, err := loadConfig(e)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	a := &app{cfg: cfg, log: newLogger(e, cfg, cfg.LogLevel), worker: workerName(), metrics: metrics.New("")}
	switch {
	case cfg.DatabaseURL.IsSet():
		pcfg, err := pgxpool.ParseConfig(cfg.DatabaseURL.Reveal())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.DatabaseURLVar, redact.Error(err))
		}
		pcfg.MaxConns = int32(max(cfg.Concurrency*2+4, 8))
		// The SQL functions raise WARNINGs for rows they had to skip (a run the rescue could not end, a
		// schedule the claim could not start), naming the row: they belong in kvsync's log too.
		log := a.log
		pcfg.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
			if n.Severity == "WARNING" {
				log.Warn("database warning", "message", n.Message)
			}
		}
		a.pool, err = pgxpool.NewWithConfig(ctx, pcfg)
		if err != nil {
			return nil, fmt.Errorf("connect to the database: %w", redact.Error(err))
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = a.pool.Ping(pctx)
		cancel()
		if err != nil {
			a.pool.Close()
			return nil, fmt.Errorf("connect to the database (%s): %w; is it running? (make db-up)", cfg.DatabaseURLVar, err)
		}
		a.store = store.New(a.metrics.Caller(store.PG{Pool: a.pool}))
	default:
		pr, err := store.NewPostgREST(cfg.SupabaseURL, cfg.ServiceKey().Reveal(), nil)
		if err != nil {
			return nil, err
		}
		a.store = store.New(a.metrics.Caller(pr))
	}
	a.metrics.Database(a.store, cfg.RateLimitPerHour)
	hc := kiotviet.NewHTTPClient()
	hc.Transport = a.metrics.Transport(hc.Transport)
	a.kiotviet = kiotviet.Config{TokenURL: cfg.TokenURL, APIURL: cfg.APIURL, RateLimitPerHour: cfg.RateLimitPerHour,
		ReadConcurrency: cfg.ReadConcurrency, HTTPClient: hc, Logger: a.log, OnRetry: a.metrics.Retried}
	a.alerts, err = alert.FromConfig(cfg.Alerts, a.store, a.log)
	if err != nil {
		a.close()
		return nil, fmt.Errorf("configuration: %w", err)
	}
	a.alerts.OnDelivery = a.metrics.Delivered
	if !needKeys {
		return a, nil
	}
	a.keys, err = cfg.Keyring()
	if err != nil {
		a.close()
		return nil, err
	}
	lease := time.Duration(cfg.LeaseSeconds) * time.Second
	a.engine, err = syncer.New(syncer.Config{Store: a.store, Keys: a.keys, KiotViet: a.kiotviet, Worker: a.worker, Logger: a.log,
		StockScanEvery: time.Duration(cfg.StockScanHours) * time.Hour,
		Lease:          lease, HeartbeatEvery: min(syncer.DefaultHeartbeatEvery, lease/4)})
	if err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

func (a *app) close() {
	if a.pool != nil {
		a.pool.Close()
	}
}

// dispatcher builds the dispatcher: in-process syncs, or fan-out when KIOTVIET_SYNC_URL is set.
func (a *app) dispatcher() *dispatch.Dispatcher {
	var runner dispatch.Runner = a.engine
	if a.cfg.SyncURL != "" {
		secretForFanout := a.cfg.CronSecret.Reveal()
		if secretForFanout == "" {
			secretForFanout = a.cfg.ServiceKey().Reveal()
		}
		runner = a.engine.Remote(dispatch.FanOut{URL: a.cfg.SyncURL, Secret: secretForFanout})
	}
	return dispatch.New(dispatch.Config{Store: a.store, Runner: runner, Worker: a.worker,
		Concurrency: a.cfg.Concurrency, Lease: time.Duration(a.cfg.LeaseSeconds) * time.Second, Alerts: a.alerts, Metrics: a.metrics, Logger: a.log})
}

func (a *app) authenticator() (*auth.Authenticator, error) {
	return auth.New(a.cfg.Auth(nil, nil))
}

// newLogger logs to stderr through the redactor: no configured secret, and no token or credential in a
// URL or error text, reaches a log line (internal/redact).
func newLogger(e env, cfg config.Config, level slog.Level) *slog.Logger {
	return slog.New(redact.New(cfg.SecretValues()...).Handler(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level})))
}

// workerName identifies this process in run rows and leases.
func workerName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d", strings.Split(host, ".")[0], os.Getpid())
}
