package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/kvsync/kvsync/functions/kiotvietsync"
	"github.com/kvsync/kvsync/functions/kiotvietwebhook"
	"github.com/kvsync/kvsync/functions/schedulesync"
	"github.com/kvsync/kvsync/internal/auth"
	"github.com/kvsync/kvsync/internal/dispatch"
	"github.com/kvsync/kvsync/internal/httpx"
	"github.com/kvsync/kvsync/internal/metrics"
	"github.com/kvsync/kvsync/internal/syncer"
	"github.com/kvsync/kvsync/internal/webhook"
)

func cmdServe(ctx context.Context, e env) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	addr := fs.String("addr", "", "listen address (default: $KVSYNC_ADDR, else :8080)")
	grace := fs.Duration("grace", 60*time.Second, "on SIGTERM, how long running syncs may take to finish before they are handed back")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "Usage: kvsync serve [--addr :8080] [--grace 60s]\n\nServes the functions (kiotviet-schedule-sync, kiotviet-sync, save-kiotviet-token, kiotviet-webhook), /healthz and\n/metrics. On SIGTERM it stops claiming, lets running syncs finish within --grace, hands back the rest\nand exits 0.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(e.args); err != nil {
		return err
	}
	a, err := newApp(ctx, e, true)
	if err != nil {
		return err
	}
	defer a.close()
	listen := *addr
	if listen == "" {
		listen = a.cfg.Addr
	}
	authn, err := a.authenticator()
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	d := a.dispatcher()
	// every replica applies stored webhook events; they share the queue through the database
	applier := webhook.NewApplier(webhook.Config{Store: a.store, Fetch: a.engine, Worker: a.worker, Logger: a.log,
		Lease: time.Duration(a.cfg.LeaseSeconds) * time.Second})
	actx, stopApplier := context.WithCancel(context.Background())
	applierDone := make(chan struct{})
	go func() { applier.Run(actx); close(applierDone) }()
	defer func() { stopApplier(); <-applierDone }()
	handler := newServer(serverDeps{app: a, auth: authn, dispatcher: d, webhookStored: applier.Wake})

	// Alerts: scanned and delivered in the background, kicked when runs end; never in a sync's way.
	alertCtx, stopAlerts := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAlerts()
	go a.alerts.Run(alertCtx)

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (set KVSYNC_ADDR or --addr)", listen, err)
	}
	srv := httpx.NewServer(handler, httpx.Limits{MaxConns: a.cfg.MaxConnections})
	a.log.Info("kvsync serving", "addr", ln.Addr().String(), "worker", a.worker, "concurrency", a.cfg.Concurrency)
	fmt.Fprintf(e.stdout, "kvsync listening on %s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.log.Info("shutting down: no more claims; waiting for running syncs", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := d.Shutdown(sctx); err != nil {
		a.log.Warn("grace period over: running syncs were handed back", "err", err)
	}
	hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer hcancel()
	if err := srv.Shutdown(hctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type serverDeps struct {
	app        *app
	auth       *auth.Authenticator
	dispatcher *dispatch.Dispatcher
	// webhookStored wakes this replica's webhook applier when an event was stored (nil: none runs here)
	webhookStored func()
}

// newServer is every route kvsync serves, in one place.
func newServer(d serverDeps) http.Handler {
	a := d.app
	log := a.log
	mux := http.NewServeMux()
	mux.Handle("/functions/v1/kiotviet-schedule-sync", schedulesync.Handler(d.dispatcher, d.auth, log))
	mux.Handle("/functions/v1/kiotviet-sync", kiotvietsync.Handler(kiotvietsync.Deps{Auth: d.auth, Admins: a.store,
		Sync: a.metrics.StartedRuns(a.engine), Logger: log}))
	mux.Handle("/functions/v1/save-kiotviet-token", kiotvietsync.SaveTokenHandler(kiotvietsync.SaveTokenDeps{
		Auth: d.auth, Admins: a.store, Logger: log,
		Connect: func(ctx context.Context, c syncer.Connection) (string, error) {
			return syncer.Connect(ctx, a.store, a.keys, a.kiotviet, c)
		}}))
	mux.Handle("/functions/v1/kiotviet-webhook", kiotvietwebhook.Handler(kiotvietwebhook.Deps{
		Store: a.store, Keys: a.keys, Logger: log, Stored: d.webhookStored}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		status, body := http.StatusOK, map[string]any{"ok": true}
		if a.pool != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := a.pool.Ping(ctx); err != nil {
				status, body = http.StatusServiceUnavailable, map[string]any{"ok": false, "error": "database unreachable"}
			}
		}
		httpx.JSON(w, status, body)
	})
	mux.Handle("GET /metrics", a.metrics.Handler(metrics.Auth{Token: a.cfg.Metrics.Token.Reveal(),
		User: a.cfg.Metrics.User, Password: a.cfg.Metrics.Password.Reveal()}, log))
	return httpx.CORS(a.cfg.CORSOrigins, logRequests(log, mux))
}

func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		log.Debug("http", "method", r.Method, "path", r.URL.Path, "took", time.Since(start).String())
	})
}
