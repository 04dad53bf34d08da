package alert

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strings"
	"time"
)

// Channel sends a message somewhere people read it. Send must honour ctx and never put a secret in its
// error (the Notifier redacts again anyway).
type Channel interface {
	// Name is the channel's name in the database and in logs: webhook, email, telegram.
	Name() string
	Send(ctx context.Context, m Message) error
	// secrets lists the values that must never appear in a log line or stored error.
	secrets() []string
}

// Webhook posts a Slack/Discord-compatible JSON message: {"text": …} for Slack and Mattermost, {"content": …}
// for Discord (each ignores the other's field).
type Webhook struct {
	URL    string
	Client *http.Client
}

func (w *Webhook) Name() string      { return "webhook" }
func (w *Webhook) secrets() []string { return []string{w.URL} }

func (w *Webhook) Send(ctx context.Context, m Message) error {
	text := "*" + m.Subject + "*\n" + m.Text
	body, _ := json.Marshal(map[string]string{"text": text, "content": truncate(text, 2000)})
	return postJSON(ctx, w.Client, w.URL, body)
}

// Telegram sends with the Bot API's sendMessage.
type Telegram struct {
	APIURL string // https://api.telegram.org, or a test server
	Token  string
	ChatID string
	Client *http.Client
}

func (t *Telegram) Name() string      { return "telegram" }
func (t *Telegram) secrets() []string { return []string{t.Token} }

func (t *Telegram) Send(ctx context.Context, m Message) error {
	body, _ := json.Marshal(map[string]any{"chat_id": t.ChatID, "text": truncate(m.Subject+"\n\n"+m.Text, 4000),
		"disable_web_page_preview": true})
	err := postJSON(ctx, t.Client, strings.TrimRight(t.APIURL, "/")+"/bot"+t.Token+"/sendMessage", body)
	var he *httpError
	if errors.As(err, &he) && he.body != "" {
		// The Bot API explains itself in {"ok":false,"description":"Bad Request: chat not found"}.
		var reply struct {
			Description string `json:"description"`
		}
		if json.Unmarshal([]byte(he.body), &reply) == nil && reply.Description != "" {
			return fmt.Errorf("telegram answered %d: %s", he.status, reply.Description)
		}
	}
	return err
}

type httpError struct {
	status int
	body   string
}

func (e *httpError) Error() string {
	if e.body == "" {
		return fmt.Sprintf("answered %d", e.status)
	}
	return fmt.Sprintf("answered %d: %s", e.status, truncate(e.body, 200))
}

func postJSON(ctx context.Context, client *http.Client, u string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return errors.New("bad URL")
	}
	req.Header.Set("Content-Type", "application/json")
	if client == nil {
		client = &http.Client{Timeout: 20 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL carries the token: report only what went wrong
		}
		return fmt.Errorf("could not reach %s: %w", req.URL.Hostname(), err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode >= 300 {
		return &httpError{status: resp.StatusCode, body: strings.TrimSpace(string(raw))}
	}
	return nil
}

// Email sends over SMTP: smtps:// is implicit TLS (port 465); smtp:// upgrades with STARTTLS when the
// server offers it, and insists on it before sending a password.
type Email struct {
	URL       string // smtp://user:pass@host:587 or smtps://user:pass@host:465
	From      string
	To        []string
	TLSConfig *tls.Config // nil: the system's roots, ServerName from the URL
}

func (e *Email) Name() string { return "email" }

func (e *Email) secrets() []string {
	out := []string{e.URL}
	if u, err := url.Parse(e.URL); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
	}
	return out
}

func (e *Email) Send(ctx context.Context, m Message) error {
	u, err := url.Parse(e.URL)
	if err != nil {
		return errors.New("KIOTVIET_ALERT_SMTP_URL is not a valid URL")
	}
	host := u.Hostname()
	port := u.Port()
	implicit := u.Scheme == "smtps"
	if port == "" {
		port = "587"
		if implicit {
			port = "465"
		}
	}
	tcfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if e.TLSConfig != nil {
		tcfg = e.TLSConfig.Clone()
		if tcfg.ServerName == "" {
			tcfg.ServerName = host
		}
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	d := net.Dialer{Deadline: deadline}
	addr := net.JoinHostPort(host, port)
	var conn net.Conn
	if implicit {
		conn, err = (&tls.Dialer{NetDialer: &d, Config: tcfg}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("could not reach the SMTP server %s: %w", addr, unwrapOp(err))
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return fmt.Errorf("SMTP greeting from %s: %w", addr, unwrapOp(err))
	}
	defer c.Close()
	if err := c.Hello("kvsync"); err != nil {
		return fmt.Errorf("SMTP EHLO: %w", err)
	}
	if !implicit {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tcfg); err != nil {
				return fmt.Errorf("SMTP STARTTLS with %s: %w", addr, unwrapOp(err))
			}
		} else if u.User != nil {
			return fmt.Errorf("the SMTP server %s offers no STARTTLS: refusing to send the password in the clear (use smtps:// for implicit TLS)", addr)
		}
	}
	if u.User != nil {
		pass, _ := u.User.Password()
		if ok, _ := c.Extension("AUTH"); !ok {
			return fmt.Errorf("the SMTP server %s does not accept a login (no AUTH)", addr)
		}
		if err := c.Auth(smtp.PlainAuth("", u.User.Username(), pass, host)); err != nil {
			return fmt.Errorf("SMTP login refused: %w", err)
		}
	}
	from, err := mail.ParseAddress(e.From)
	if err != nil {
		return errors.New("KIOTVIET_ALERT_SMTP_FROM is not an email address")
	}
	if err := c.Mail(from.Address); err != nil {
		return fmt.Errorf("SMTP MAIL FROM refused: %w", err)
	}
	var to []string
	for _, t := range e.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return fmt.Errorf("recipient %q is not an email address", t)
		}
		if err := c.Rcpt(a.Address); err != nil {
			return fmt.Errorf("SMTP RCPT TO %s refused: %w", a.Address, err)
		}
		to = append(to, a.String())
	}
	wc, err := c.Data()
	if err != nil {
		return fmt.Errorf("SMTP DATA refused: %w", err)
	}
	if _, err := wc.Write(buildMIME(from.String(), to, m)); err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	if err := wc.Close(); err != nil {
		return fmt.Errorf("SMTP server did not accept the message: %w", err)
	}
	return c.Quit()
}

// buildMIME is a multipart/alternative message: the plain-text part first (what text-only clients and
// screen readers show), the HTML part second.
func buildMIME(from string, to []string, m Message) []byte {
	var b bytes.Buffer
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	h := textproto.MIMEHeader{}
	h.Set("From", from)
	h.Set("To", strings.Join(to, ", "))
	h.Set("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	h.Set("Date", time.Now().Format(time.RFC1123Z))
	h.Set("Message-ID", "<"+hex.EncodeToString(rnd[:])+"@kvsync>")
	h.Set("MIME-Version", "1.0")
	h.Set("Auto-Submitted", "auto-generated")
	mw := multipart.NewWriter(&b)
	h.Set("Content-Type", "multipart/alternative; boundary="+mw.Boundary())
	var head bytes.Buffer
	for _, k := range []string{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Auto-Submitted", "Content-Type"} {
		fmt.Fprintf(&head, "%s: %s\r\n", k, h.Get(k))
	}
	head.WriteString("\r\n")
	for _, part := range []struct{ ctype, body string }{{"text/plain; charset=utf-8", m.Text}, {"text/html; charset=utf-8", m.HTML}} {
		pw, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {part.ctype}, "Content-Transfer-Encoding": {"quoted-printable"}})
		qp := quotedprintable.NewWriter(pw)
		_, _ = qp.Write([]byte(strings.ReplaceAll(part.body, "\n", "\r\n")))
		_ = qp.Close()
	}
	_ = mw.Close()
	return append(head.Bytes(), b.Bytes()...)
}

func unwrapOp(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
