package config

import (
	"cmp"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Alert defaults, applied when the variable is unset or empty.
const (
	DefaultAlertLang          = "vi"
	DefaultAlertFailures      = 1
	DefaultAlertLongFactor    = 3.0
	DefaultAlertLongMin       = 10 * time.Minute
	DefaultAlertStaleAfter    = 24 * time.Hour
	DefaultAlertWebhooksAfter = 24 * time.Hour
	DefaultTelegramAPIURL     = "https://api.telegram.org"
	DefaultAlertMaxAttempts   = 8
	MaxAlertFailures          = 100
	MinAlertStaleAfter        = time.Minute
	MaxAlertLongFactorAllowed = 1000
)

// Alerts is the KIOTVIET_ALERT_* settings: where alerts go (any number of channels at once) and when they
// are raised. Secrets (the webhook URL, the SMTP URL with its password, the bot token) are Secret.
type Alerts struct {
	// WebhookURL is KIOTVIET_ALERT_WEBHOOK_URL: a Slack/Discord-compatible incoming webhook.
	WebhookURL Secret
	// SMTPURL is KIOTVIET_ALERT_SMTP_URL: smtp://user:pass@host:587 (STARTTLS) or smtps://…:465 (TLS).
	SMTPURL Secret
	// SMTPFrom is KIOTVIET_ALERT_SMTP_FROM, the sender address.
	SMTPFrom string
	// SMTPTo is KIOTVIET_ALERT_SMTP_TO, comma-separated recipients.
	SMTPTo []string
	// SMTPCAFile is KIOTVIET_ALERT_SMTP_CA_FILE: a PEM file of CAs to trust for the SMTP server, for a
	// relay with a private certificate. Empty = the system's roots.
	SMTPCAFile string
	// TelegramToken is KIOTVIET_ALERT_TELEGRAM_BOT_TOKEN, from @BotFather.
	TelegramToken Secret
	// TelegramChatID is KIOTVIET_ALERT_TELEGRAM_CHAT_ID: a chat, group (-100…) or @channel.
	TelegramChatID string
	// TelegramAPIURL is KIOTVIET_ALERT_TELEGRAM_API_URL, the Bot API base; default DefaultTelegramAPIURL.
	TelegramAPIURL string
	// Lang is KIOTVIET_ALERT_LANG: vi (default) or en.
	Lang string
	// Failures is KIOTVIET_ALERT_FAILURES: consecutive failed runs before a schedule is "failing".
	Failures int
	// LongFactor is KIOTVIET_ALERT_LONG_FACTOR: a run is "running long" past this many times its
	// schedule's median duration...
	LongFactor float64
	// LongMin is KIOTVIET_ALERT_LONG_MIN: ...and past this long at least.
	LongMin time.Duration
	// StaleAfter is KIOTVIET_ALERT_STALE_AFTER: a stream with no successful sync for this long is "stale".
	StaleAfter time.Duration
	// WebhooksStoppedAfter is KIOTVIET_ALERT_WEBHOOKS_STOPPED_AFTER: a credential that was receiving
	// KiotViet webhooks and has received none for this long is "webhooks stopped".
	WebhooksStoppedAfter time.Duration
}

// Metrics is who may read GET /metrics: KVSYNC_METRICS_TOKEN (Authorization: Bearer) and/or
// KVSYNC_METRICS_USER with KVSYNC_METRICS_PASSWORD (basic auth). Neither set = open.
type Metrics struct {
	Token    Secret
	User     string
	Password Secret
}

// Protected reports whether /metrics asks for credentials.
func (m Metrics) Protected() bool { return m.Token.IsSet() || m.User != "" }

func (l *loader) alerts() Alerts {
	var a Alerts
	a.WebhookURL = Secret(l.get("KIOTVIET_ALERT_WEBHOOK_URL"))
	l.httpURL("KIOTVIET_ALERT_WEBHOOK_URL", a.WebhookURL.Reveal(), true)

	a.SMTPURL = Secret(l.get("KIOTVIET_ALERT_SMTP_URL"))
	a.SMTPFrom = l.get("KIOTVIET_ALERT_SMTP_FROM")
	for _, to := range strings.Split(l.get("KIOTVIET_ALERT_SMTP_TO"), ",") {
		if to = strings.TrimSpace(to); to != "" {
			a.SMTPTo = append(a.SMTPTo, to)
		}
	}
	a.SMTPCAFile = l.get("KIOTVIET_ALERT_SMTP_CA_FILE")
	if a.SMTPURL.IsSet() {
		if problem := checkSMTPURL(a.SMTPURL.Reveal()); problem != "" {
			l.fail("KIOTVIET_ALERT_SMTP_URL", "%s", problem)
		}
		if a.SMTPFrom == "" {
			l.fail("KIOTVIET_ALERT_SMTP_FROM", "not set: the sender address is required with KIOTVIET_ALERT_SMTP_URL")
		} else if _, err := mail.ParseAddress(a.SMTPFrom); err != nil {
			l.fail("KIOTVIET_ALERT_SMTP_FROM", "%q is not an email address", a.SMTPFrom)
		}
		if len(a.SMTPTo) == 0 {
			l.fail("KIOTVIET_ALERT_SMTP_TO", "not set: at least one recipient is required with KIOTVIET_ALERT_SMTP_URL")
		}
		for _, to := range a.SMTPTo {
			if _, err := mail.ParseAddress(to); err != nil {
				l.fail("KIOTVIET_ALERT_SMTP_TO", "%q is not an email address", to)
			}
		}
	} else if a.SMTPFrom != "" || len(a.SMTPTo) > 0 {
		l.fail("KIOTVIET_ALERT_SMTP_URL", "not set, but KIOTVIET_ALERT_SMTP_FROM/_TO are: set smtp://user:pass@host:587")
	}

	a.TelegramToken = Secret(l.get("KIOTVIET_ALERT_TELEGRAM_BOT_TOKEN"))
	a.TelegramChatID = l.get("KIOTVIET_ALERT_TELEGRAM_CHAT_ID")
	a.TelegramAPIURL = strings.TrimRight(cmp.Or(l.get("KIOTVIET_ALERT_TELEGRAM_API_URL"), DefaultTelegramAPIURL), "/")
	l.httpURL("KIOTVIET_ALERT_TELEGRAM_API_URL", a.TelegramAPIURL, false)
	switch {
	case a.TelegramToken.IsSet() && a.TelegramChatID == "":
		l.fail("KIOTVIET_ALERT_TELEGRAM_CHAT_ID", "not set: the chat to send to is required with KIOTVIET_ALERT_TELEGRAM_BOT_TOKEN")
	case !a.TelegramToken.IsSet() && a.TelegramChatID != "":
		l.fail("KIOTVIET_ALERT_TELEGRAM_BOT_TOKEN", "not set, but KIOTVIET_ALERT_TELEGRAM_CHAT_ID is: create a bot with @BotFather")
	case a.TelegramToken.IsSet() && strings.ContainsAny(a.TelegramToken.Reveal(), "/?#% "):
		l.fail("KIOTVIET_ALERT_TELEGRAM_BOT_TOKEN", "does not look like a bot token (123456:ABC…)")
	}

	a.Lang = strings.ToLower(cmp.Or(l.get("KIOTVIET_ALERT_LANG"), DefaultAlertLang))
	if a.Lang != "vi" && a.Lang != "en" {
		l.fail("KIOTVIET_ALERT_LANG", "%q is not vi or en", a.Lang)
	}
	a.Failures = l.intIn("KIOTVIET_ALERT_FAILURES", DefaultAlertFailures, 1, MaxAlertFailures)
	a.LongFactor = DefaultAlertLongFactor
	if v := l.get("KIOTVIET_ALERT_LONG_FACTOR"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || f > MaxAlertLongFactorAllowed {
			l.fail("KIOTVIET_ALERT_LONG_FACTOR", "%q is not a number above 0 and at most %d (e.g. 3)", v, MaxAlertLongFactorAllowed)
		} else {
			a.LongFactor = f
		}
	}
	a.LongMin = l.duration("KIOTVIET_ALERT_LONG_MIN", DefaultAlertLongMin, 0)
	a.StaleAfter = l.duration("KIOTVIET_ALERT_STALE_AFTER", DefaultAlertStaleAfter, MinAlertStaleAfter)
	a.WebhooksStoppedAfter = l.duration("KIOTVIET_ALERT_WEBHOOKS_STOPPED_AFTER", DefaultAlertWebhooksAfter, MinAlertStaleAfter)
	return a
}

func (l *loader) metrics() Metrics {
	m := Metrics{Token: Secret(l.get("KVSYNC_METRICS_TOKEN")), User: l.get("KVSYNC_METRICS_USER"),
		Password: Secret(l.get("KVSYNC_METRICS_PASSWORD"))}
	if n := len(m.Token); n > 0 && n < 16 {
		l.fail("KVSYNC_METRICS_TOKEN", "too short (%d characters); want at least 16, e.g. from `openssl rand -hex 32`", n)
	}
	if (m.User == "") != !m.Password.IsSet() {
		l.fail("KVSYNC_METRICS_USER", "KVSYNC_METRICS_USER and KVSYNC_METRICS_PASSWORD go together: set both or neither")
	}
	return m
}

func (l *loader) duration(name string, def, lo time.Duration) time.Duration {
	v := l.get(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < lo {
		l.fail(name, "%q is not a duration of at least %s (e.g. 30m, 24h)", v, lo)
		return def
	}
	return d
}

// checkSMTPURL never quotes the value: it carries the password.
func checkSMTPURL(v string) string {
	u, err := url.Parse(v)
	switch {
	case err != nil:
		return "not a valid URL (percent-encode special characters in the user and password)"
	case u.Scheme != "smtp" && u.Scheme != "smtps":
		return "want smtp://user:pass@host:587 (STARTTLS) or smtps://user:pass@host:465 (TLS)"
	case u.Hostname() == "":
		return "URL has no host"
	case u.Port() != "":
		if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
			return "port is not a number from 1 to 65535"
		}
	}
	return ""
}
