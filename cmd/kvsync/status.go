package main

import (
	"context"
	"fmt"
	"github.com/kvsync/kvsync/internal/vocab"
	"time"

	"github.com/kvsync/kvsync/internal/store"
)

func cmdStatus(ctx context.Context, e env) error {
	fs := newFlags(e, "status", `
Usage: kvsync status [--json]

Shows every schedule: retailer, type, how often, when it runs next ("in 3h12m", "due", "overdue 25m",
"retry in 10m" for a failing schedule, "paused: <reason>"), its last sync (when the last successful run
finished), last status and error, consecutive failures, and its own run in progress. Times are also shown
in the schedule's time zone, which is named; times until the next run come from the database's clock.`)
	asJSON := fs.Bool("json", false, "print the rows as JSON (the kiotviet_schedule_status view)")
	if err := parseFlags(fs, e.args); err != nil {
		return err
	}
	a, qctx, done, err := connect(ctx, e, false)
	if err != nil {
		return err
	}
	defer done()
	rows, err := a.store.Status(qctx)
	if err != nil {
		return dbError("status", err)
	}
	if *asJSON {
		if rows == nil {
			rows = []store.ScheduleStatus{}
		}
		return writeJSON(e.stdout, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(e.stdout, "no schedules yet: add one with 'kvsync schedule set --credential ID --type products_full --every hourly'")
		return nil
	}
	printStatus(e, rows, time.Now())
	printWebhookStatus(qctx, e, a)
	return nil
}

// printWebhookStatus adds a line per credential with webhooks: events waiting, applied and parked (with
// the latest reason), and when the last one arrived.
func printWebhookStatus(ctx context.Context, e env, a *app) {
	health, err := a.store.WebhookHealth(ctx)
	if err != nil || len(health) == 0 {
		return
	}
	fmt.Fprintln(e.stdout)
	for _, h := range health {
		last := "no event yet"
		if h.LastReceivedAt != nil {
			last = "last event " + human(time.Since(*h.LastReceivedAt)) + " ago"
		}
		line := fmt.Sprintf("webhooks %s: %d/%d registered active, %d waiting, %d applied, %d parked, %s",
			h.RetailerName, h.ActiveRegistrations, h.Registrations, h.Pending+h.Applying, h.Applied, h.Parked, last)
		if h.Parked > 0 && h.LastParkedError != nil {
			line += " (parked: " + *h.LastParkedError + ")"
		}
		fmt.Fprintln(e.stdout, line)
	}
}

func printStatus(e env, rows []store.ScheduleStatus, now time.Time) {
	tw := newTable(e.stdout, "RETAILER", "TYPE", "EVERY", "ENABLED", "NEXT RUN", "LAST SYNC", "LAST STATUS", "FAILURES", "RUNNING")
	for _, r := range rows {
		next := "-"
		switch {
		case r.PausedReason != nil:
			next = "paused: " + oneLine(*r.PausedReason, 60)
		case !r.CredentialActive:
			next = "never (credential inactive)"
		case !r.Enabled:
			next = "never (disabled)"
		case r.SecondsUntilNextRun != nil:
			next = nextRunIn(time.Duration(*r.SecondsUntilNextRun) * time.Second)
			if r.NextRetryAt != nil {
				next = "retry " + next
			}
			next += " (" + deref(r.NextRunLocal, "-") + ")"
		}
		enabled := "yes"
		switch {
		case r.PausedReason != nil:
			enabled = "paused"
		case !r.Enabled:
			enabled = "no"
		}
		last := deref(r.LastStatus, "-")
		if r.LastError != nil && *r.LastError != "" && last != string(vocab.Success) {
			last += ": " + oneLine(*r.LastError, 60)
		}
		lastSync := ago(r.LastRunAt, now)
		if r.LastRunLocal != nil {
			lastSync += " (" + *r.LastRunLocal + ")"
		}
		row(tw, deref(r.RetailerName, r.CredentialID), r.SyncType, every(r), enabled, next, lastSync,
			last, r.ConsecutiveFailures, running(r, now))
	}
	_ = tw.Flush()
}

// every renders a schedule's period: hourly, daily at 02:00, every 6h.
func every(r store.ScheduleStatus) string {
	s := r.Frequency
	if vocab.Frequency(r.Frequency) == vocab.Custom && r.CustomIntervalHours != nil {
		s = fmt.Sprintf("every %dh", *r.CustomIntervalHours)
	}
	if r.TimeOfDay != nil && *r.TimeOfDay != "" {
		tod := *r.TimeOfDay
		if len(tod) > 5 {
			tod = tod[:5]
		}
		s += " at " + tod
		if r.Timezone != "Asia/Ho_Chi_Minh" {
			s += " " + r.Timezone
		}
	}
	return s
}

// running renders a run in progress from its heartbeat's progress: "4m: products, 12 pages, 1,200 records".
func running(r store.ScheduleStatus, now time.Time) string {
	if r.RunningLogID == nil {
		if r.CredentialBusyLogID != nil {
			return "waiting: the credential is syncing (run " + (*r.CredentialBusyLogID)[:8] + ")"
		}
		return "-"
	}
	var p store.Progress
	if r.RunningProgress != nil {
		p = *r.RunningProgress
	}
	since := "running"
	if r.RunningStartedAt != nil {
		since = human(now.Sub(*r.RunningStartedAt))
	}
	return since + ": " + progressText(p)
}
