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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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

// Every kind reads as a sentence in both languages, names the shop and what to do, and the webhook events
// say when the last event came and which command re-registers.
func TestRenderEveryKindInBothLanguages(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 1, 1, 30, 0, 0, time.UTC) // 08:30 in Vietnam
	cases := []struct {
		ev     Event
		vi, en []string // in the subject or the text
	}{
		{Event{Kind: KindRunningLong, Details: Details{RetailerName: "shop1", SyncType: "products", StartedAt: &at,
			RunningSeconds: 3600, UsualSeconds: 120}},
			[]string{"chạy lâu bất thường", "Bắt đầu chạy: 2026-12-01 08:30", "Thời gian thường: 2 phút", "kvsync status"},
			[]string{"is taking unusually long", "Started: 2026-12-01 08:30", "Usually takes: 2 min", "kvsync status"}},
		{Event{Kind: KindStale, Details: Details{RetailerName: "shop1", Stream: "inventory", LastSuccessAt: &at, StaleSeconds: 86400}},
			[]string{"Dữ liệu tồn kho của shop1 chưa được cập nhật", "Lần đồng bộ thành công gần nhất: 2026-12-01 08:30", "kvsync doctor"},
			[]string{"Stock data of shop1 is out of date", "Last successful sync: 2026-12-01 08:30", "kvsync doctor"}},
		{Event{Kind: KindWebhooksStopped, Details: Details{RetailerName: "shop1", CredentialID: "c0ffee00-0000-0000-0000-000000000001",
			LastReceivedAt: &at, StoppedSeconds: 6 * 3600, InactiveTypes: []string{"stock.update"}}},
			[]string{"KiotViet đã ngừng gửi webhook cho shop1", "Sự kiện webhook gần nhất: 2026-12-01 08:30", "Ngưỡng cảnh báo: 6 giờ 0 phút",
				"KiotViet đã tắt webhook: stock.update", "kvsync webhooks register --credential c0ffee00-0000-0000-0000-000000000001"},
			[]string{"KiotViet stopped sending webhooks for shop1", "Last webhook event: 2026-12-01 08:30", "Alert after: 6 h 0 min",
				"Disabled by KiotViet: stock.update", "kvsync webhooks register --credential c0ffee00-0000-0000-0000-000000000001"}},
		{Event{Kind: KindRecovered, Details: Details{RetailerName: "shop1", PreviousState: KindWebhooksStopped, Since: &at}},
			[]string{"KiotViet đã gửi webhook lại cho shop1", "Webhook từ KiotViet đã đến lại", "Từ lúc: 2026-12-01 08:30"},
			[]string{"KiotViet sends webhooks for shop1 again", "KiotViet webhooks arrive again", "Since: 2026-12-01 08:30"}},
	}
	for _, c := range cases {
		for lang, want := range map[string][]string{"vi": c.vi, "en": c.en} {
			m := Render(c.ev, lang)
			all := m.Subject + "\n" + m.Text
			assert.Contains(t, all, "shop1", c.ev.Kind+" "+lang)
			for _, w := range want {
				assert.Contains(t, all, w, c.ev.Kind+" "+lang)
			}
			assert.NotContains(t, all, "%!", "no broken format verb: %s %s", c.ev.Kind, lang)
			assert.Contains(t, m.HTML, "<table>")
		}
	}
}
