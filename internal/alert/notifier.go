// Package alert tells people when syncing needs them: a schedule that starts failing, recovers, is paused,
// a run that takes far longer than usual, a stream whose data has gone stale, KiotViet's webhooks no longer
// arriving for a shop that was receiving them (and arriving again). The state of every watched subject and
// a dedupe key per change live in Postgres (kiotviet_alert_scan), so however many replicas look, each
// change of state is one event, delivered once to each channel (webhook, email, Telegram).
// Delivery happens in the background with retries and backoff; it never blocks or fails a sync.
package alert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/kvsync/kvsync/internal/config"
	"github.com/kvsync/kvsync/internal/redact"
	"github.com/kvsync/kvsync/internal/store"
)

// Defaults of a Notifier.
const (
	DefaultSendTimeout = 20 * time.Second
	DefaultInterval    = time.Minute // how often a serving replica looks without being kicked
	claimLease         = 90 * time.Second
)

// Notifier scans for changes of state and delivers their events.
type Notifier struct {
	Store       *store.Store
	Channels    []Channel
	Rules       store.AlertRules
	Lang        string
	MaxAttempts int           // default config.DefaultAlertMaxAttempts
	SendTimeout time.Duration // of one send; default DefaultSendTimeout
	Interval    time.Duration // Run's idle period; default DefaultInterval
	Logger      *slog.Logger
	// OnDelivery, when set, is called after each send attempt: a test signal and the metrics' hook.
	OnDelivery func(channel, status string)

	kick chan struct{}
	once sync.Once
}

// FromConfig builds the channels the configuration names and a Notifier over them. It returns nil
// channels (and a Notifier that only keeps state) when none is configured.
func FromConfig(a config.Alerts, st *store.Store, log *slog.Logger) (*Notifier, error) {
	var chs []Channel
	client := &http.Client{Timeout: DefaultSendTimeout}
	if a.WebhookURL.IsSet() {
		chs = append(chs, &Webhook{URL: a.WebhookURL.Reveal(), Client: client})
	}
	if a.SMTPURL.IsSet() {
		e := &Email{URL: a.SMTPURL.Reveal(), From: a.SMTPFrom, To: a.SMTPTo}
		if a.SMTPCAFile != "" {
			pem, err := os.ReadFile(a.SMTPCAFile)
			if err != nil {
				return nil, fmt.Errorf("KIOTVIET_ALERT_SMTP_CA_FILE: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, errors.New("KIOTVIET_ALERT_SMTP_CA_FILE: no PEM certificate in the file")
			}
			e.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		chs = append(chs, e)
	}
	if a.TelegramToken.IsSet() {
		chs = append(chs, &Telegram{APIURL: a.TelegramAPIURL, Token: a.TelegramToken.Reveal(), ChatID: a.TelegramChatID, Client: client})
	}
	return &Notifier{Store: st, Channels: chs, Lang: a.Lang, Logger: log, Rules: store.AlertRules{
		Failures: a.Failures, LongFactor: a.LongFactor, LongMin: a.LongMin, StaleAfter: a.StaleAfter,
		WebhooksStoppedAfter: a.WebhooksStoppedAfter}}, nil
}

func (n *Notifier) init() {
	n.once.Do(func() {
		n.kick = make(chan struct{}, 1)
		if n.Logger == nil {
			n.Logger = slog.New(slog.DiscardHandler)
		}
		if n.MaxAttempts <= 0 {
			n.MaxAttempts = config.DefaultAlertMaxAttempts
		}
		if n.SendTimeout <= 0 {
			n.SendTimeout = DefaultSendTimeout
		}
		if n.Interval <= 0 {
			n.Interval = DefaultInterval
		}
		if n.Rules.Failures < 1 {
			n.Rules.Failures = config.DefaultAlertFailures
		}
		if n.Rules.LongFactor <= 0 {
			n.Rules.LongFactor = config.DefaultAlertLongFactor
		}
		if n.Rules.StaleAfter <= 0 {
			n.Rules.StaleAfter = config.DefaultAlertStaleAfter
		}
		if n.Rules.WebhooksStoppedAfter <= 0 {
			n.Rules.WebhooksStoppedAfter = config.DefaultAlertWebhooksAfter
		}
	})
}

func (n *Notifier) channelNames() []string {
	out := make([]string, 0, len(n.Channels))
	for _, c := range n.Channels {
		out = append(out, c.Name())
	}
	return out
}

func (n *Notifier) channel(name string) Channel {
	for _, c := range n.Channels {
		if c.Name() == name {
			return c
		}
	}
	return nil
}

// redact removes the channels' secrets (as given and percent-encoded) and anything token-like from s.
func (n *Notifier) redact(s string) string {
	var secs []string
	for _, c := range n.Channels {
		for _, sec := range c.secrets() {
			secs = append(secs, sec, url.PathEscape(sec), url.QueryEscape(sec))
		}
	}
	return redact.New(secs...).String(s)
}

// Kick asks Run to look now. It never blocks: a sync calls it when it ends and goes on.
func (n *Notifier) Kick() {
	if n == nil {
		return
	}
	n.init()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// Run scans and delivers whenever kicked and every Interval, until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	n.init()
	t := time.NewTicker(n.Interval)
	defer t.Stop()
	for {
		n.Flush(ctx)
		select {
		case <-ctx.Done():
			return
		case <-n.kick:
		case <-t.C:
		}
	}
}

// Flush scans once and sends every due delivery, returning when done or when ctx ends. Errors are
// logged (redacted), never returned: alerts must not fail what called them.
func (n *Notifier) Flush(ctx context.Context) {
	n.init()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	evs, err := n.Store.AlertScan(sctx, n.Rules, n.channelNames())
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			n.Logger.Warn("alerts: could not check for changes", "err", n.redact(err.Error()))
		}
	}
	for _, e := range evs {
		n.Logger.Info("alert raised", "kind", e.Kind, "event", e.EventID)
	}
	n.deliverDue(ctx, "")
}

// deliverDue claims and sends due deliveries (of one event when eventID is set) until none is left.
func (n *Notifier) deliverDue(ctx context.Context, eventID string) {
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		due, err := n.Store.AlertClaim(cctx, 20, claimLease, eventID)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				n.Logger.Warn("alerts: could not claim deliveries", "err", n.redact(err.Error()))
			}
			return
		}
		if len(due) == 0 {
			return
		}
		var wg sync.WaitGroup
		for _, d := range due {
			wg.Add(1)
			go func() { defer wg.Done(); n.send(ctx, d) }()
		}
		wg.Wait()
	}
}

// send delivers one claimed delivery and records the outcome.
func (n *Notifier) send(ctx context.Context, d store.AlertEvent) {
	ch := n.channel(d.Channel)
	var sendErr error
	if ch == nil {
		sendErr = fmt.Errorf("channel %s is not configured on this replica", d.Channel)
	} else {
		msg := Render(Event{ID: d.EventID, Kind: d.Kind, Details: decodeDetails(d.Details), CreatedAt: d.CreatedAt}, n.Lang)
		sctx, cancel := context.WithTimeout(ctx, n.SendTimeout)
		sendErr = ch.Send(sctx, msg)
		cancel()
	}
	errText := ""
	if sendErr != nil {
		errText = n.redact(sendErr.Error())
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	status, err := n.Store.AlertDelivered(rctx, d.EventID, d.Channel, errText, n.MaxAttempts)
	cancel()
	if err != nil {
		n.Logger.Warn("alerts: could not record a delivery", "channel", d.Channel, "err", n.redact(err.Error()))
		return
	}
	switch status {
	case "sent":
		n.Logger.Info("alert sent", "channel", d.Channel, "kind", d.Kind, "event", d.EventID)
	case "failed":
		n.Logger.Error("alert delivery given up", "channel", d.Channel, "kind", d.Kind, "attempts", d.Attempts, "err", errText)
	default:
		n.Logger.Warn("alert delivery failed; will retry", "channel", d.Channel, "kind", d.Kind, "attempt", d.Attempts, "err", errText)
	}
	if n.OnDelivery != nil {
		n.OnDelivery(d.Channel, status)
	}
}

// TestResult is one channel's answer to `kvsync alerts test`.
type TestResult struct {
	Channel string
	Err     error // redacted
}

// Test sends a test message to every configured channel now, once each, and says how each went. The
// deliveries are recorded like any other (a failed one is retried in the background by serving replicas).
func (n *Notifier) Test(ctx context.Context) ([]TestResult, error) {
	n.init()
	if len(n.Channels) == 0 {
		return nil, errors.New("no alert channel is configured: set KIOTVIET_ALERT_WEBHOOK_URL, KIOTVIET_ALERT_SMTP_URL (with _FROM and _TO) or KIOTVIET_ALERT_TELEGRAM_BOT_TOKEN (with _CHAT_ID)")
	}
	id, err := n.Store.AlertTest(ctx, n.channelNames())
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	results := map[string]error{}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	due, err := n.Store.AlertClaim(cctx, len(n.Channels), claimLease, id)
	cancel()
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	for _, d := range due {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := n.channel(d.Channel)
			msg := Render(Event{ID: d.EventID, Kind: d.Kind, Details: decodeDetails(d.Details), CreatedAt: d.CreatedAt}, n.Lang)
			sctx, cancel := context.WithTimeout(ctx, n.SendTimeout)
			serr := ch.Send(sctx, msg)
			cancel()
			errText := ""
			if serr != nil {
				errText = n.redact(serr.Error())
			}
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
			_, _ = n.Store.AlertDelivered(rctx, d.EventID, d.Channel, errText, n.MaxAttempts)
			rcancel()
			mu.Lock()
			if errText != "" {
				results[d.Channel] = errors.New(errText)
			} else {
				results[d.Channel] = nil
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	out := make([]TestResult, 0, len(results))
	for _, c := range n.Channels {
		if err, ok := results[c.Name()]; ok {
			out = append(out, TestResult{Channel: c.Name(), Err: err})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Channel < out[j].Channel })
	return out, nil
}

// ChannelNames lists the configured channels (webhook, email, telegram).
func (n *Notifier) ChannelNames() []string {
	if n == nil {
		return nil
	}
	return n.channelNames()
}
