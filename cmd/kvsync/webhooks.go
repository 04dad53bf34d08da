package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kvsync/kvsync/internal/config"
	"github.com/kvsync/kvsync/internal/webhook"
)

const webhooksUsage = `
Usage: kvsync webhooks register --credential ID --url https://<kvsync host>/functions/v1/kiotviet-webhook [--types t1,t2]
       kvsync webhooks list [--credential ID] [--json]
       kvsync webhooks remove --credential ID [--types t1,t2]

register makes a new signing secret (stored encrypted like the other secrets), then for each event type
deletes the shop's registration of that type in KiotViet (KiotViet allows one per type: this replaces
another integration's hook of the same type) and registers the URL with the credential and type added
(?credential=ID&event=TYPE). Registering again replaces everything and repairs hooks KiotViet disabled.
Default types: ` + "product.update, product.delete, stock.update, category.update, category.delete, branch.update, branch.delete, pricebook.delete, pricebookdetail.update, pricebookdetail.delete" + `.
list shows what is registered and what the events did; remove deletes registrations from KiotViet.`

func cmdWebhooks(ctx context.Context, e env) error {
	sub, e, ok, err := takeSubcommand(e, "webhooks", webhooksUsage, "register", "list", "remove")
	if !ok {
		return err
	}
	switch sub {
	case "register":
		return webhooksRegister(ctx, e)
	case "list", "ls":
		return webhooksList(ctx, e)
	case "remove", "rm":
		return webhooksRemove(ctx, e)
	}
	return unknownSubcommand("webhooks", sub, "register", "list", "remove")
}

func splitTypes(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

func webhooksRegister(ctx context.Context, e env) error {
	fs := newFlags(e, "webhooks register", webhooksUsage)
	cred := fs.String("credential", "", "credential id (kvsync credentials list)")
	url := fs.String("url", "", "the receiver's public URL: https://<kvsync host>/functions/v1/kiotviet-webhook")
	types := fs.String("types", "", "comma-separated event types (default: every type kvsync applies)")
	if err := parseFlags(fs, e.args); err != nil {
		return err
	}
	if *cred == "" || *url == "" {
		return errors.New("webhooks register: --credential and --url are required")
	}
	if _, err := webhook.EndpointURL(*url, *cred, "product.update"); err != nil {
		return fmt.Errorf("webhooks register: %w", err)
	}
	a, err := newApp(ctx, e, true)
	if err != nil {
		return err
	}
	defer a.close()
	client, err := a.engine.Client(ctx, *cred)
	if err != nil {
		return fmt.Errorf("webhooks register: %w (kvsync credentials list shows the ids)", err)
	}
	regs, err := webhook.Register(ctx, a.store, a.keys, client, *cred, *url, splitTypes(*types))
	if err != nil {
		return fmt.Errorf("webhooks register: %w; run it again to finish (it replaces what it registered)", err)
	}
	tw := newTable(e.stdout, "TYPE", "KIOTVIET ID", "URL")
	for _, r := range regs {
		row(tw, r.EventType, *r.KiotVietWebhookID, r.URL)
	}
	_ = tw.Flush()
	fmt.Fprintf(e.stdout, "registered %d webhook(s); kvsync doctor checks them with KiotViet\n", len(regs))
	return nil
}

func webhooksList(ctx context.Context, e env) error {
	fs := newFlags(e, "webhooks list", webhooksUsage)
	cred := fs.String("credential", "", "only this credential")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, e.args); err != nil {
		return err
	}
	a, err := newApp(ctx, e, false)
	if err != nil {
		return err
	}
	defer a.close()
	regs, err := a.store.WebhookRegistrations(ctx, *cred)
	if err != nil {
		return err
	}
	health, err := a.store.WebhookHealth(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, map[string]any{"registrations": regs, "events": health})
	}
	tw := newTable(e.stdout, "CREDENTIAL", "TYPE", "ACTIVE", "REGISTERED", "PROBLEM")
	for _, r := range regs {
		problem := ""
		if r.Problem != nil {
			problem = *r.Problem
		}
		row(tw, r.CredentialID, r.EventType, r.IsActive, r.RegisteredAt.Local().Format(time.DateTime), problem)
	}
	_ = tw.Flush()
	fmt.Fprintln(e.stdout)
	tw = newTable(e.stdout, "RETAILER", "PENDING", "APPLIED", "PARKED", "LAST EVENT")
	for _, h := range health {
		if *cred != "" && h.CredentialID != *cred {
			continue
		}
		last := "never"
		if h.LastReceivedAt != nil {
			last = human(time.Since(*h.LastReceivedAt)) + " ago"
		}
		row(tw, h.RetailerName, h.Pending+h.Applying, h.Applied, h.Parked, last)
	}
	return tw.Flush()
}

func webhooksRemove(ctx context.Context, e env) error {
	fs := newFlags(e, "webhooks remove", webhooksUsage)
	cred := fs.String("credential", "", "credential id")
	types := fs.String("types", "", "comma-separated event types (default: every registered one)")
	if err := parseFlags(fs, e.args); err != nil {
		return err
	}
	if *cred == "" {
		return errors.New("webhooks remove: --credential is required")
	}
	a, err := newApp(ctx, e, true)
	if err != nil {
		return err
	}
	defer a.close()
	client, err := a.engine.Client(ctx, *cred)
	if err != nil {
		return fmt.Errorf("webhooks remove: %w", err)
	}
	removed, err := webhook.Remove(ctx, a.store, client, *cred, splitTypes(*types))
	if err != nil {
		return fmt.Errorf("webhooks remove: %w", err)
	}
	fmt.Fprintf(e.stdout, "removed %d webhook(s): %s\n", len(removed), strings.Join(removed, ", "))
	return nil
}

// webhooks checks each credential's webhooks: parked events, registrations KiotViet no longer has or
// disabled (compared live with KiotViet's list when the keys are at hand), and events that stopped arriving.
func (d *doctor) webhooks(ctx context.Context, e env, a *app) {
	health, err := a.store.WebhookHealth(ctx)
	if err != nil {
		d.fail("webhooks", err.Error(), "kvsync migrate")
		return
	}
	if len(health) == 0 {
		d.skip("webhooks", "none registered (kvsync webhooks register); scheduled runs keep everything in sync")
		return
	}
	var live *app
	if a.engine != nil {
		live = a
	} else if la, err := newApp(ctx, e, true); err == nil {
		live = la
		defer la.close()
	}
	// no event for this long is reported, as the "webhooks stopped" alert does (a shop that sells daily
	// sends stock events daily; a quiet shop can raise KIOTVIET_ALERT_WEBHOOKS_STOPPED_AFTER)
	stoppedAfter := cmp.Or(a.cfg.Alerts.WebhooksStoppedAfter, config.DefaultAlertWebhooksAfter)
	for _, h := range health {
		name := "webhooks of " + h.RetailerName
		fix := fmt.Sprintf("kvsync webhooks register --credential %s --url https://<kvsync host>/functions/v1/kiotviet-webhook", h.CredentialID)
		var problems []string
		if live != nil && h.Registrations > 0 {
			if client, err := live.engine.Client(ctx, h.CredentialID); err == nil {
				ps, err := webhook.Check(ctx, a.store, client, h.CredentialID)
				if err != nil {
					d.warn(name, "could not compare with KiotViet's list: "+err.Error(), "check the credential (kvsync sync)")
				}
				for _, p := range ps {
					problems = append(problems, p.EventType+" "+p.Message)
				}
			}
		} else {
			for _, t := range h.InactiveTypes {
				problems = append(problems, t+" inactive")
			}
		}
		if len(problems) > 0 {
			d.fail(name, strings.Join(problems, "; "), fix)
		}
		if h.Parked > 0 {
			reason := ""
			if h.LastParkedError != nil {
				reason = ": " + *h.LastParkedError
			}
			d.fail(name+": parked events", fmt.Sprintf("%d event(s) failed every attempt%s", h.Parked, reason),
				"fix the cause, then select kiotviet_webhook_retry(id) from kiotviet_webhook_events where status = 'parked' (the next scheduled run repairs the data anyway)")
		}
		switch {
		case h.Registrations > 0 && h.LastReceivedAt == nil:
			d.warn(name, "registered, but no event has arrived yet", "change something in the shop and check that KiotViet reaches the URL")
		case h.Registrations > 0 && time.Since(*h.LastReceivedAt) > stoppedAfter:
			d.warn(name, "no event for "+human(time.Since(*h.LastReceivedAt)), "check the registrations in KiotViet; "+fix)
		case len(problems) == 0 && h.Parked == 0:
			d.pass(name, fmt.Sprintf("%d registered, %d applied, %d waiting", h.ActiveRegistrations, h.Applied, h.Pending+h.Applying))
		}
	}
}
