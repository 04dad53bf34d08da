package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"time"

	"github.com/kvsync/kvsync/internal/errs"
	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
	"github.com/kvsync/kvsync/internal/vocab"
)

func cmdSync(ctx context.Context, e env) error {
	fs := newFlags(e, "sync", `
Usage: kvsync sync --credential ID [--type products_full] [--full] [--page-size N] [--date-from DATE]

Syncs one credential now (a manual run, logged like any other; it refuses to start while the credential
is already syncing). On a terminal a progress line follows the run's log row. At the end it prints what
each stream did. Exits non-zero unless the run succeeded.
Types: `+vocab.Names(vocab.SyncTypes)+`.`)
	credID := fs.String("credential", "", "credential id (see 'kvsync credentials list')")
	syncType := fs.String("type", "products_full", "what to sync")
	full := fs.Bool("full", false, "a full reconcile: read everything and delete what KiotViet no longer has")
	pageSize := fs.Int("page-size", 0, "items per KiotViet page, 50-100 (default 100)")
	dateFrom := fs.String("date-from", "", "incremental from this time instead of the cursor: 2006-01-02, 2006-01-02T15:04 (Vietnam time) or RFC 3339")
	if err := parseFlags(fs, e.args); err != nil {
		return err
	}
	if *credID == "" {
		return errors.New("sync: --credential is required (see 'kvsync credentials list' for the ids)")
	}
	if !vocab.SyncType(*syncType).Valid() {
		return fmt.Errorf("sync: --type %q is not one of %s", *syncType, vocab.Names(vocab.SyncTypes))
	}
	if !kiotviet.PageSizeOK(*pageSize) {
		return fmt.Errorf("sync: --page-size must be a whole number from %d to %d", kiotviet.MinPageSize, kiotviet.MaxPageSize)
	}
	var from time.Time
	if *dateFrom != "" {
		var err error
		if from, err = kiotviet.ParseDateFrom(*dateFrom); err != nil {
			return fmt.Errorf("sync: --date-from: %w", err)
		}
	}
	a, err := newApp(ctx, e, true)
	if err != nil {
		return err
	}
	defer a.close()

	engine, live, err := foregroundEngine(e, a)
	if err != nil {
		return err
	}
	req := syncer.Request{CredentialID: *credID, SyncType: vocab.SyncType(*syncType), Trigger: vocab.Manual,
		PageSize: *pageSize, DateFrom: from, Full: *full}
	run, err := engine.Start(ctx, req)
	if err != nil {
		return syncStartError(*credID, err)
	}
	fmt.Fprintf(e.stdout, "run %s: %s for credential %s\n", run.ID, *syncType, *credID)
	res, runErr := follow(ctx, e, a.store, live, run.ID, run.Wait)
	next := ""
	if res.NextRunAt != nil {
		next = fmt.Sprintf("the %s schedule runs next at %s", *syncType, res.NextRunAt.Local().Format("2006-01-02 15:04 MST"))
	}
	return runReport(e.stdout, "sync", run.ID, res, runErr, next)
}

// runReport prints what a run the CLI waited for did (each stream, then one line with the totals, and
// next, what the schedule does next, when known) and returns the command's error unless the run succeeded.
func runReport(w io.Writer, cmd, runID string, res syncer.Result, runErr error, next string) error {
	printStreams(w, res)
	line := fmt.Sprintf("%s: %s records, %s API calls", cmp.Or(res.Status, vocab.Failed), thousands(res.Records), thousands(res.APICalls))
	if next != "" {
		line += "; " + next
	}
	fmt.Fprintln(w, line)
	if res.Paused > 0 {
		fmt.Fprintf(w, "KiotViet rejected the credentials: %d schedule(s) paused until the connection is saved again\n", res.Paused)
	}
	switch {
	case runErr != nil:
		return fmt.Errorf("%s: run %s: %w", cmd, runID, runErr)
	case res.Status != vocab.Success:
		return fmt.Errorf("%s: run %s ended %s: %s", cmd, runID, cmp.Or(res.Status, vocab.Failed), cmp.Or(res.Error, "see the streams above"))
	}
	return nil
}

// foregroundEngine is the engine for a run the CLI carries out and waits for. On a terminal (live) it
// heartbeats every second, since the progress line reads the run's log row that the heartbeat writes,
// and logs only warnings: info lines would break the progress line, and the summary says the same.
func foregroundEngine(e env, a *app) (*syncer.Engine, bool, error) {
	if !isTerminal(e.stdout) {
		return a.engine, false, nil
	}
	engine, err := syncer.New(syncer.Config{Store: a.store, Keys: a.keys, KiotViet: a.kiotviet, Worker: a.worker,
		Logger: newLogger(e, a.cfg, max(a.cfg.LogLevel, slog.LevelWarn)), StockScanEvery: time.Duration(a.cfg.StockScanHours) * time.Hour,
		Lease: time.Duration(a.cfg.LeaseSeconds) * time.Second, HeartbeatEvery: time.Second})
	return engine, true, err
}

// follow waits for a run the engine carries out (wait), with a progress line when live. The engine
// finishes the run whatever happens; this only shows it.
func follow(ctx context.Context, e env, st *store.Store, live bool, runID string, wait func() (syncer.Result, error)) (syncer.Result, error) {
	type outcome struct {
		res syncer.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := wait()
		done <- outcome{res, err}
	}()
	var out outcome
	if live {
		out = <-showProgress(ctx, e.stdout, st, runID, done)
	} else {
		out = <-done
	}
	return out.res, out.err
}

// showProgress redraws one line from the run's log row (stream, pages, records, published by the
// engine's heartbeat) until the run ends, then passes its outcome on.
func showProgress[T any](ctx context.Context, w io.Writer, st *store.Store, runID string, done <-chan T) <-chan T {
	out := make(chan T, 1)
	go func() {
		start := time.Now()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		var p store.Progress
		polled := time.Time{}
		for {
			select {
			case v := <-done:
				fmt.Fprint(w, "\r\x1b[K")
				out <- v
				return
			case <-t.C:
			}
			if time.Since(polled) >= time.Second {
				polled = time.Now()
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				if l, err := st.Run(pctx, runID); err == nil {
					p = l.Progress
				}
				cancel()
			}
			fmt.Fprintf(w, "\r\x1b[K  %s  (%s)", progressText(p), human(time.Since(start)))
		}
	}()
	return out
}

// progressText renders a heartbeat's progress: "products: 45% (4,500 of 10,000), 45 pages, 4,510 records".
func progressText(p store.Progress) string {
	s := cmp.Or(p.Stream, "starting") + ": "
	if p.Total > 0 {
		s += fmt.Sprintf("%d%% (%s of %s), ", min(100, p.Done*100/p.Total), thousands(p.Done), thousands(p.Total))
	}
	return s + fmt.Sprintf("%d pages, %s records", p.Pages, thousands(p.Records))
}

func printStreams(w io.Writer, res syncer.Result) {
	if len(res.Streams) == 0 {
		return
	}
	names := make([]string, 0, len(res.Streams))
	for n := range res.Streams {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := newTable(w, "STREAM", "MODE", "READ", "WRITTEN", "DELETED", "PAGES", "API CALLS", "ERROR")
	for _, n := range names {
		s := res.Streams[n]
		row(tw, n, cmp.Or(s.Mode, "-"), thousands(s.Count), thousands(s.Written), thousands(s.Deleted),
			s.Pages, thousands(s.APICalls), cmp.Or(oneLine(s.Error, 80), "-"))
	}
	_ = tw.Flush()
}

// syncStartError explains why a run could not start.
func syncStartError(credID string, err error) error {
	switch errs.CodeOf(err) {
	case errs.NotFound:
		return fmt.Errorf("sync: no credential %s: see 'kvsync credentials list'", credID)
	case errs.Conflict:
		return fmt.Errorf("sync: credential %s is already syncing: wait for that run to end ('kvsync status')", credID)
	case errs.State:
		return fmt.Errorf("sync: credential %s is not active: add the connection again ('kvsync credentials add') or use the active one", credID)
	}
	return dbError("sync", err)
}
