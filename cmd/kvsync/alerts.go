package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kvsync/kvsync/internal/config"
)

func cmdAlerts(ctx context.Context, e env) error {
	fs := newFlags(e, "alerts", `
Usage: kvsync alerts test

Sends a test message to every configured alert channel (webhook, email, Telegram: see the
KIOTVIET_ALERT_* variables in .env.example) and says which failed and why. Exits non-zero when one failed.`)
	if len(e.args) == 0 || e.args[0] != "test" {
		if err := parseFlags(fs, e.args); err != nil {
			return err
		}
		fs.Usage()
		return errors.New("alerts: want 'kvsync alerts test'")
	}
	if err := parseFlags(fs, e.args[1:]); err != nil {
		return err
	}
	a, err := newApp(ctx, e, false)
	if err != nil {
		return err
	}
	defer a.close()
	tctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	results, err := a.alerts.Test(tctx)
	if err != nil {
		return fmt.Errorf("alerts test: %w", err)
	}
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
			fmt.Fprintf(e.stdout, "✗ %s: %s\n", r.Channel, r.Err)
			continue
		}
		fmt.Fprintf(e.stdout, "✓ %s: test message sent\n", r.Channel)
	}
	if failed > 0 {
		return fmt.Errorf("alerts test: %d of %d channel(s) failed: see above", failed, len(results))
	}
	return nil
}

// alerts reports channels whose deliveries fail (kiotviet_alert_problems). A delivery being retried is a
// warning: kvsync keeps trying with backoff, and a server that was down for a minute needs nobody. One
// given up (every try failed) is a failure: that alert never reached anyone, and will not by itself.
func (d *doctor) alerts(ctx context.Context, a *app) {
	problems, err := a.store.AlertProblems(ctx)
	if err != nil {
		d.fail("alert deliveries", "could not read them: "+err.Error(), "apply the migrations: kvsync migrate")
		return
	}
	names := a.alerts.ChannelNames()
	if len(problems) == 0 {
		if len(names) == 0 {
			d.pass("alert deliveries", "no alert channel configured (KIOTVIET_ALERT_*), nothing failed")
		} else {
			d.pass("alert deliveries", "none failing (channels: "+strings.Join(names, ", ")+")")
		}
		return
	}
	for _, p := range problems {
		var parts []string
		if p.Failed > 0 {
			parts = append(parts, fmt.Sprintf("%d given up in the last 7 days (every try failed)", p.Failed))
		}
		if p.Retrying > 0 {
			parts = append(parts, fmt.Sprintf("%d being retried", p.Retrying))
		}
		detail := strings.Join(parts, ", ")
		if p.LastError != nil {
			detail += "; last error: " + *p.LastError
		}
		if p.LastAttemptAt != nil {
			detail += " (" + ago(p.LastAttemptAt, time.Now()) + ")"
		}
		name := "alert deliveries to " + p.Channel
		if p.Failed > 0 {
			d.fail(name, detail, "fix the channel (its KIOTVIET_ALERT_* settings, and that its server answers) until "+
				"'kvsync alerts test' passes; alerts given up are not sent again: read them with "+
				"select e.kind, e.details from kiotviet_alert_events e join kiotviet_alert_deliveries d on d.event_id = e.id "+
				"where d.status = 'failed' and d.channel = '"+p.Channel+"'")
			continue
		}
		d.warn(name, detail, "nothing yet: kvsync retries with backoff (up to 30 min apart, "+
			fmt.Sprint(config.DefaultAlertMaxAttempts)+" tries); if the error stays, check the channel's KIOTVIET_ALERT_* "+
			"settings and that its server answers, then run 'kvsync alerts test'")
	}
}
