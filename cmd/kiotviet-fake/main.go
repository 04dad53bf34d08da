// Command kiotviet-fake serves a fake KiotViet shop (token endpoint and
// Retail Public API) so kvsync, its tests and other developers can work
// without a live shop. On start it prints the URLs and credentials to use.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/kvsync/kvsync/internal/kiotvietfake"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "kiotviet-fake:", err)
		os.Exit(1)
	}
}

// run parses flags, starts the fake and serves until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kiotviet-fake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host := fs.String("host", "127.0.0.1", "interface to listen on")
	port := fs.Int("port", 8765, "port to listen on (0 picks a free one)")
	products := fs.Int("products", 1000, "product rows in the catalogue (variants and units count)")
	branches := fs.Int("branches", 2, "branches")
	categories := fs.Int("categories", 30, "categories (tree of at most 3 levels)")
	seed := fs.Int64("seed", 1, "catalogue seed: same seed, same shop and credentials")
	latency := fs.Duration("latency", 0, "latency added to every request, e.g. 100ms")
	errorRate := fs.Float64("error-rate", 0, "share of API requests answered 503 (0..1)")
	timeoutRate := fs.Float64("timeout-rate", 0, "share of API requests that hang until the client gives up (0..1)")
	malformedRate := fs.Float64("malformed-rate", 0, "share of API replies cut short (0..1)")
	rateLimit := fs.Int("rate-limit", 5000, "GET requests allowed per sliding hour (negative: unlimited)")
	maxConcurrent := fs.Int("max-concurrent", 0, "API requests one client (Retailer) may have in flight; more are answered 429 (0: no cap)")
	tokenTTL := fs.Duration("token-ttl", 24*time.Hour, "lifetime of issued tokens (expires_in)")
	pageDefault := fs.Int("page-default", 20, "pageSize when a request has none")
	pageMax := fs.Int("page-max", 100, "largest pageSize honoured (larger ones are clamped)")
	retailer := fs.String("retailer", "", "Retailer header value (default derived from -seed)")
	clientID := fs.String("client-id", "", "client id (default derived from -seed)")
	clientSecret := fs.String("client-secret", "", "client secret (default derived from -seed)")
	imageObjects := fs.Bool("images-as-objects", false, `send images as [{"Image": url}] instead of URL strings`)
	listDeleted := fs.Bool("list-deleted", false, `keep deleted products in lists, their codes renamed "…{DEL}"`)
	verbose := fs.Bool("v", false, "log every request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for name, r := range map[string]float64{"error-rate": *errorRate, "timeout-rate": *timeoutRate, "malformed-rate": *malformedRate} {
		if r < 0 || r > 1 {
			return fmt.Errorf("-%s must be between 0 and 1", name)
		}
	}
	if *products < 0 || *branches < 0 || *categories < 0 {
		return errors.New("-products, -branches and -categories must not be negative")
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	fake := kiotvietfake.New(kiotvietfake.Options{
		Products: *products, Branches: *branches, Categories: *categories, Seed: *seed,
		PageDefault: *pageDefault, PageMax: *pageMax, RateLimitPerHour: *rateLimit, TokenTTL: *tokenTTL,
		MaxConcurrentPerClient: *maxConcurrent,
		Retailer:               *retailer, ClientID: *clientID, ClientSecret: *clientSecret, ImagesAsObjects: *imageObjects, ListDeleted: *listDeleted,
		Faults: kiotvietfake.Faults{Latency: *latency, ErrorRate: *errorRate, TimeoutRate: *timeoutRate, MalformedRate: *malformedRate},
		Logger: log,
	})
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	snap := fake.Snapshot()
	fmt.Fprintf(stdout, `kiotviet-fake: a fake KiotViet shop with %d products, %d branches, %d categories (seed %d)
  KIOTVIET_TOKEN_URL=%s%s
  KIOTVIET_API_URL=%s
  retailer:      %s
  client id:     %s
  client secret: %s
  admin:         POST %s/_fake/{change,delete,stock,add}?n=N, POST /_fake/reuse-code, POST /_fake/revoke-tokens,
                 POST /_fake/change-arrays, POST /_fake/deactivate-branch?id=ID, POST /_fake/delete-category?id=ID,
                 GET /_fake/counts, POST /_fake/reset-counts, GET /_fake/snapshot,
                 POST /_fake/webhooks/{faults,release}, GET /_fake/webhooks/stats
`, len(snap.Products), len(snap.Branches), len(snap.Categories), *seed,
		base, kiotvietfake.TokenPath, base, fake.Retailer(), fake.ClientID(), fake.ClientSecret(), base)

	mux := http.NewServeMux()
	mux.Handle("/_fake/", adminHandler(fake))
	mux.Handle("/", fake.Handler())
	srv := &http.Server{
		Handler:           logRequests(log, mux),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
	}
	return nil
}

// adminHandler exposes the fake's mutation API over HTTP so a developer or
// a benchmark in another process can create change in the running shop.
func adminHandler(f *kiotvietfake.Server) http.Handler {
	mux := http.NewServeMux()
	n := func(r *http.Request) int {
		v, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || v < 0 {
			return 1
		}
		return v
	}
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("POST /_fake/change", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]any{"changed": f.ChangeProducts(n(r))})
	})
	mux.HandleFunc("POST /_fake/delete", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]any{"deleted": f.DeleteProducts(n(r))})
	})
	mux.HandleFunc("POST /_fake/stock", func(w http.ResponseWriter, r *http.Request) { reply(w, map[string]any{"moved": f.MoveStock(n(r))}) })
	mux.HandleFunc("POST /_fake/add", func(w http.ResponseWriter, r *http.Request) { reply(w, map[string]any{"added": f.AddProducts(n(r))}) })
	mux.HandleFunc("POST /_fake/reuse-code", func(w http.ResponseWriter, r *http.Request) {
		id, code, ok := f.ReuseDeletedCode()
		reply(w, map[string]any{"id": id, "code": code, "ok": ok})
	})
	id := func(r *http.Request) int64 {
		v, _ := strconv.ParseInt(r.URL.Query().Get("id"), 10, 64)
		return v
	}
	fail := func(w http.ResponseWriter, err error) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": err.Error()})
	}
	mux.HandleFunc("POST /_fake/change-arrays", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]any{"changed": f.ChangeEveryArray()})
	})
	mux.HandleFunc("POST /_fake/deactivate-branch", func(w http.ResponseWriter, r *http.Request) {
		if err := f.DeactivateBranch(id(r)); err != nil {
			fail(w, err)
			return
		}
		reply(w, map[string]any{"deactivated": id(r)})
	})
	mux.HandleFunc("POST /_fake/delete-category", func(w http.ResponseWriter, r *http.Request) {
		if err := f.DeleteCategory(id(r)); err != nil {
			fail(w, err)
			return
		}
		reply(w, map[string]any{"deleted": id(r)})
	})
	mux.HandleFunc("POST /_fake/revoke-tokens", func(w http.ResponseWriter, r *http.Request) {
		f.RevokeTokens()
		reply(w, map[string]any{"revoked": true})
	})
	mux.HandleFunc("GET /_fake/counts", func(w http.ResponseWriter, r *http.Request) { reply(w, f.Counts()) })
	mux.HandleFunc("POST /_fake/reset-counts", func(w http.ResponseWriter, r *http.Request) {
		f.ResetCounts()
		reply(w, map[string]any{"reset": true})
	})
	mux.HandleFunc("GET /_fake/snapshot", func(w http.ResponseWriter, r *http.Request) { reply(w, f.Snapshot()) })
	f.WebhookAdminRoutes(mux)
	return mux
}

// logRequests logs method, path and status at debug level (never headers,
// which carry tokens).
func logRequests(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		h.ServeHTTP(sw, r)
		log.LogAttrs(r.Context(), slog.LevelDebug, "request", slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Int("status", sw.status), slog.Duration("took", time.Since(start)))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}
