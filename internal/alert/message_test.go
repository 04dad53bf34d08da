package alert

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRenderSaysWhatToDoWithoutTheRawError(t *testing.T) {
	since := time.Date(2026, 12, 1, 1, 30, 0, 0, time.UTC)
	raw := "products: kiotviet: POST https://id.kiotviet.vn/connect/token?client_secret=abc: status 401 (invalid_client)\ngoroutine 1 [running]:"
	ev := Event{Kind: KindFailing, Details: Details{RetailerName: "shop1", SyncType: "products_full", Error: raw,
		Failures: 4, FailingSince: &since}}
	for _, lang := range []string{"vi", "en"} {
		m := Render(ev, lang)
		for _, part := range []string{m.Subject, m.Text, m.HTML} {
			assert.NotContains(t, part, "client_secret")
			assert.NotContains(t, part, "goroutine")
			assert.NotContains(t, part, "401")
		}
		assert.Contains(t, m.Text, "shop1")
		assert.Contains(t, m.Text, "2026-12-01 08:30", "since when, in Vietnam time")
		assert.Contains(t, m.Text, "4")
	}
	assert.Contains(t, Render(ev, "vi").Text, "KiotViet từ chối thông tin kết nối")
	en := Render(ev, "en")
	assert.Equal(t, "[kvsync] Products (full) sync for shop1 is failing", en.Subject)
	assert.Contains(t, en.Text, "KiotViet refused the connection details")
	assert.Contains(t, en.Text, "What to do: In KiotViet")
}

func TestClassify(t *testing.T) {
	for errText, want := range map[string]cause{
		"kiotviet: GET /products: status 429":                        causeRateLimit,
		"kiotviet: GET /products: status 503":                        causeUnavailable,
		"worker w1 stopped heartbeating; lease expired at 12:00":     causeWorkerStopped,
		"kiotviet_apply_products: violates check constraint":         causeDatabase,
		"kiotviet: POST /connect/token: status 400 (invalid_client)": causeCredentials,
		"something odd": causeOther,
	} {
		assert.Equal(t, want, classify(errText), errText)
	}
}

// A channel whose server cannot be reached fails with an error that names the host, never the token
// or the webhook path; the redactor catches what a library might still quote.
func TestChannelErrorsCarryNoSecret(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tg := &Telegram{APIURL: "http://" + addr, Token: "42:secret-bot-token", ChatID: "1"}
	hook := &Webhook{URL: "http://" + addr + "/services/T/B/hook-token"}
	mailer := &Email{URL: "smtp://u:smtp-pass@" + addr, From: "a@example.com", To: []string{"b@example.com"}}
	for _, ch := range []Channel{tg, hook, mailer} {
		err := ch.Send(ctx, Message{Subject: "s", Text: "t"})
		require.Error(t, err, ch.Name())
		for _, leak := range []string{"secret-bot-token", "hook-token", "smtp-pass"} {
			assert.NotContains(t, err.Error(), leak, ch.Name())
		}
	}
	n := &Notifier{Channels: []Channel{tg}}
	out := n.redact(`Post "https://api.telegram.org/bot42:secret-bot-token/sendMessage": dial tcp: refused; see https://u:p@x.example/path?token=1`)
	assert.NotContains(t, out, "secret-bot-token")
	assert.NotContains(t, out, "u:p@")
	assert.NotContains(t, out, "token=1")
	assert.Contains(t, out, "x.example", out)
}
