package redact_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/redact"
)

const (
	slackToken    = "xAbC1234dEfG5678hIjK9012"
	discordToken  = "Zq9dX0wJ-kL3mN5pQ7rS9tU1vW3yZ5aB7cD9eF1gH3iJ5kL7mN9oP1qR3sT5uV7wX9yZ1aB3c"
	telegramToken = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
)

func TestURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"https://hooks.slack.com/services/T000/B000/" + slackToken, "https://hooks.slack.com/services/T000/B000/REDACTED"},
		{"https://discord.com/api/webhooks/1234567890123456789/" + discordToken, "https://discord.com/api/webhooks/1234567890123456789/REDACTED"},
		{"https://api.telegram.org/bot" + telegramToken + "/sendMessage", "https://api.telegram.org/REDACTED/sendMessage"},
		{"https://user:hunter2-password@replica.example.com/functions/v1/kiotviet-sync", "https://REDACTED@replica.example.com/functions/v1/kiotviet-sync"},
		{"https://x.example.com/hook?token=short&apikey=abc&name=ok", "https://x.example.com/hook?apikey=REDACTED&name=ok&token=REDACTED"},
		{"https://x.example.com/hook?t=" + slackToken, "https://x.example.com/hook?t=REDACTED"},
		// what KiotViet calls look like stays readable
		{"https://public.kiotapi.com/products?pageSize=100&currentItem=200&lastModifiedFrom=2026-01-02T03:04:05", "https://public.kiotapi.com/products?currentItem=200&lastModifiedFrom=2026-01-02T03%3A04%3A05&pageSize=100"},
		{"http://127.0.0.1:8080/functions/v1/kiotviet-schedule-sync", "http://127.0.0.1:8080/functions/v1/kiotviet-schedule-sync"},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, redact.URL(c.in), c.in)
	}
}

// What net/http returns for a failed request prints the URL: the alert and fan-out errors of the issue.
func TestErrorOfAFailedRequest(t *testing.T) {
	hook := "http://127.0.0.1:1/services/T000/B000/" + slackToken
	client := &http.Client{Timeout: 2 * time.Second}
	_, err := client.Post(hook, "application/json", strings.NewReader("{}"))
	require.Error(t, err)
	require.Contains(t, err.Error(), slackToken, "net/http's error carries the URL")
	red := redact.Error(fmt.Errorf("alert: %w", err))
	assert.NotContains(t, red.Error(), slackToken)
	assert.Contains(t, red.Error(), "127.0.0.1:1/services/T000/B000/REDACTED")
	var ne interface{ Timeout() bool }
	assert.True(t, errors.As(red, &ne), "errors.As still reaches the *url.Error")
}

func TestStringAndHandler(t *testing.T) {
	jwt := "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
	in := "Authorization: Bearer abc.def-ghi key sb_secret_abcDEF123_xyz and " + jwt + " and sb_publishable_Q1w2E3r4"
	out := redact.String(in)
	for _, s := range []string{"abc.def-ghi", "sb_secret_abcDEF123_xyz", jwt, "sb_publishable_Q1w2E3r4"} {
		assert.NotContains(t, out, s)
	}

	var buf bytes.Buffer
	cron := "my-cron-secret-0123456789-abcdefghij"
	log := slog.New(redact.New(cron, "").Handler(slog.NewTextHandler(&buf, nil)))
	log = log.With("cfg", "cron="+cron)
	log.Info("dispatch with "+cron, "err", errors.New("POST https://h.example.com/x/"+slackToken+": refused"),
		slog.Group("g", "url", "https://u:p@h.example.com/"), "n", 3, "any", []string{cron})
	got := buf.String()
	assert.NotContains(t, got, cron)
	assert.NotContains(t, got, slackToken)
	assert.NotContains(t, got, "u:p@")
	assert.Contains(t, got, "n=3")
	require.NoError(t, slog.New(redact.New().Handler(slog.NewTextHandler(&buf, nil))).Handler().Handle(context.Background(),
		slog.NewRecord(time.Now(), slog.LevelInfo, "plain", 0)))
}
