package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kvsync/kvsync/internal/dispatch"
	"github.com/kvsync/kvsync/internal/errs"
	"github.com/kvsync/kvsync/internal/vocab"
)

func cmdDispatch(ctx context.Context, e env) error {
	fs := newFlags(e, "dispatch", `
Usage: kvsync dispatch [--limit N] [--timeout 30m]

Runs one dispatcher tick now, as the cron job's call would: rescues runs whose worker died, claims the
due schedules (at most --limit, default KVSYNC_CONCURRENCY), runs them here, waits for them and prints
one line per run. Exits non-zero when a run failed. Nothing due? See 'kvsync status'.`)
	limit := fs.Int("limit", 0, "most schedules to claim (default: KVSYNC_CONCURRENCY)")
	timeout := fs.Duration("timeout", 30*time.Minute, "how long to wait for the claimed runs; the rest are handed back")
	if err := parseFlags(fs, e.args); err != nil {
		return err
	}
	if *limit < 0 || *limit > 1000 {
		return errors.New("dispatch: --limit must be between 1 and 1000")
	}
	a, err := newApp(ctx, e, true)
	if err != nil {
		return err
	}
	defer a.close()
	d := a.dispatcher()

	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	tick, err := d.Tick(tctx, *limit)
	cancel()
	if err != nil {
		return dbError("dispatch", err)
	}
	if n := len(tick.Rescued); n > 0 {
		fmt.Fprintf(e.stdout, "rescued %d run(s) whose worker stopped heartbeating (marked failed)\n", n)
	}
	if len(tick.Claimed) == 0 {
		// Due schedules that wait for a run of their credential (one run per credential) are not "nothing".
		waiting := 0
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		if rows, err := a.store.Status(sctx); err == nil {
			for _, r := range rows {
				if r.IsDue && (r.RunningLogID != nil || r.CredentialBusyLogID != nil) {
					waiting++
				}
			}
		}
		scancel()
		if waiting > 0 {
			fmt.Fprintf(e.stdout, "nothing could start: %d due schedule(s) wait for a run of their credential to end (see 'kvsync status')\n", waiting)
			return nil
		}
		fmt.Fprintln(e.stdout, "nothing is due: no schedule was claimed (see 'kvsync status' for the next runs)")
		return nil
	}
	fmt.Fprintf(e.stdout, "claimed %d schedule(s); running them…\n", len(tick.Claimed))

	wctx, wcancel := context.WithTimeout(ctx, *timeout)
	results := tick.Wait(wctx)
	wcancel()
	// Whatever did not end in time (or on Ctrl-C) is cancelled and finished as failed, never left running.
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	_ = d.Shutdown(sctx)
	scancel()
	// Alerts for what these runs changed, sent before the process exits (bounded: never a reason to hang).
	actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	a.alerts.Flush(actx)
	acancel()

	retailers := map[string]string{}
	lctx, lcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	if creds, err := a.store.Credentials(lctx); err == nil {
		for _, c := range creds {
			retailers[c.ID] = c.RetailerName
		}
	}
	lcancel()

	tw := newTable(e.stdout, "RETAILER", "CREDENTIAL", "TYPE", "STATUS", "RECORDS", "API CALLS", "ERROR")
	var records int
	var calls int64
	failed := 0
	byStatus := map[string]int{}
	ended := map[string]bool{}
	for _, r := range results {
		ended[r.Claim.RunID] = true
		status, msg := runStatus(r)
		byStatus[status]++
		if s := vocab.Status(status); s != vocab.Success && s != vocab.Skipped {
			failed++
		}
		records += r.Result.Records
		calls += r.Result.APICalls
		row(tw, cmp.Or(retailers[r.Claim.CredentialID], "?"), r.Claim.CredentialID, r.Claim.SyncType, status,
			thousands(r.Result.Records), thousands(r.Result.APICalls), cmp.Or(oneLine(msg, 80), "-"))
	}
	for _, c := range tick.Claimed {
		if !ended[c.RunID] {
			failed++
			byStatus["unfinished"]++
			row(tw, cmp.Or(retailers[c.CredentialID], "?"), c.CredentialID, c.SyncType, "unfinished", "-", "-",
				"did not end within --timeout; cancelled and finished as failed")
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "total: %d run(s) (%s), %s records, %s API calls\n", len(tick.Claimed),
		statusCounts(byStatus), thousands(records), thousands(calls))
	if failed > 0 {
		return fmt.Errorf("dispatch: %d of %d run(s) did not succeed: see the errors above, and 'kvsync status'", failed, len(tick.Claimed))
	}
	return nil
}

// runStatus is a dispatched run's status and error for the table.
func runStatus(r dispatch.RunResult) (string, string) {
	status := cmp.Or(r.Result.Status, vocab.Failed)
	msg := r.Result.Error
	if r.Err != nil {
		status = vocab.Failed
		if msg == "" {
			msg = r.Err.Error()
		}
		if errs.CodeOf(r.Err) == errs.Conflict {
			msg = "the credential was already syncing: " + msg
		}
	}
	return string(status), msg
}

func statusCounts(m map[string]int) string {
	out := ""
	for _, s := range []string{string(vocab.Success), string(vocab.Partial), string(vocab.Failed), string(vocab.Skipped), "unfinished"} {
		if m[s] > 0 {
			if out != "" {
				out += ", "
			}
			out += fmt.Sprintf("%d %s", m[s], s)
		}
	}
	return out
}
