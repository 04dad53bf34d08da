package alert_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/alert"
	"github.com/kvsync/kvsync/internal/dispatch"
	"github.com/kvsync/kvsync/internal/kiotvietfake"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
)

const botToken = "123456789:AAtest-bot-token_do-not-leak"

type channels struct {
	smtp     *smtpServer
	tg, hook *recorder
	list     func() []alert.Channel
}

// allChannels starts a real SMTP server, a fake Bot API and a chat webhook, and makes fresh channel
// values for them (each replica gets its own, as each process would).
func allChannels(t *testing.T) *channels {
	smtp := startSMTP(t)
	tgSrv, tg := fakeTelegram(t, botToken, "-1001234")
	hookSrv, hook := fakeWebhook(t)
	return &channels{smtp: smtp, tg: tg, hook: hook, list: func() []alert.Channel {
		return []alert.Channel{
			&alert.Webhook{URL: hookSrv.URL + "/services/T000/B000/hook-secret"},
			&alert.Email{URL: smtp.URL, From: "kvsync <kvsync@example.com>", To: []string{"ops@example.com", "owner@example.com"}, TLSConfig: smtp.TLS},
			&alert.Telegram{APIURL: tgSrv.URL, Token: botToken, ChatID: "-1001234"},
		}
	}}
}

func (c *channels) counts(t *testing.T) (hook, mail, tg int) {
	return len(c.hook.all()), len(c.smtp.mails(t)), len(c.tg.all())
}

// Failing → one message per channel; more failures → none; recovery → one per channel. The messages say
// which shop, what failed in plain words, since when, how many tries, what to do; in Vietnamese by
// default; email with a plain-text part; no secret, token or raw error anywhere.
func TestFailingRepeatedRecoveredOneMessageEach(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	ch := allChannels(t)
	n := &alert.Notifier{Store: s.store, Channels: ch.list()}
	r := s.replica("r1", n)
	sched := s.schedule(t, "categories")
	ctx := context.Background()

	s.fake.SetFaults(kiotvietfake.Faults{Status5xxNext: 1000})
	require.Equal(t, "failed", s.runOnce(t, r, sched))
	n.Flush(ctx)
	h, m, tg := ch.counts(t)
	assert.Equal(t, []int{1, 1, 1}, []int{h, m, tg}, "one failing alert per channel")

	require.Equal(t, "failed", s.runOnce(t, r, sched))
	n.Flush(ctx)
	require.Equal(t, "failed", s.runOnce(t, r, sched))
	n.Flush(ctx)
	h, m, tg = ch.counts(t)
	assert.Equal(t, []int{1, 1, 1}, []int{h, m, tg}, "repeated failures send nothing new")

	s.fake.SetFaults(kiotvietfake.Faults{})
	require.Equal(t, "success", s.runOnce(t, r, sched))
	n.Flush(ctx)
	require.Equal(t, "success", s.runOnce(t, r, sched))
	n.Flush(ctx)
	h, m, tg = ch.counts(t)
	assert.Equal(t, []int{2, 2, 2}, []int{h, m, tg}, "one recovery alert per channel")

	mails := ch.smtp.mails(t)
	failing := mails[0]
	assert.Contains(t, failing.Subject, "đang lỗi")
	assert.Contains(t, failing.Subject, s.fake.Credentials().Retailer)
	assert.Equal(t, "ops@example.com,owner@example.com", failing.To)
	assert.Contains(t, failing.Text, "Cửa hàng: "+s.fake.Credentials().Retailer)
	assert.Contains(t, failing.Text, "nhóm hàng (categories)")
	assert.Contains(t, failing.Text, "Không kết nối được tới KiotViet", "a 503 in plain words")
	assert.Contains(t, failing.Text, "Từ lúc:")
	assert.Contains(t, failing.Text, "Số lần thử thất bại liên tiếp: 1")
	assert.Contains(t, failing.Text, "Cần làm:")
	assert.Contains(t, failing.HTML, "<table>")
	assert.Contains(t, mails[1].Subject, "hoạt động lại")
	tgs := ch.tg.all()
	assert.Contains(t, tgs[0], "đang lỗi")
	assert.Contains(t, tgs[1], "hoạt động lại")

	everything := strings.Join(append(append(ch.hook.all(), tgs...), mails[0].Raw, mails[1].Raw), "\n")
	for _, leak := range []string{s.secret, botToken, ch.smtp.Pass, "hook-secret", "status 503", "kiotviet:", "goroutine"} {
		assert.NotContains(t, everything, leak)
	}
	// the state and the events are in the database: one failing, one recovered
	var kinds []string
	rows, err := s.db.Query(ctx, `select kind from kiotviet_alert_events where schedule_id = $1 order by created_at`, sched)
	require.NoError(t, err)
	for rows.Next() {
		var k string
		require.NoError(t, rows.Scan(&k))
		kinds = append(kinds, k)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []string{"failing", "recovered"}, kinds)
}

// KIOTVIET_ALERT_FAILURES=3: the first two failures say nothing, the third alerts, in English when asked.
func TestFailingAfterNFailuresInEnglish(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	hookSrv, hook := fakeWebhook(t)
	n := &alert.Notifier{Store: s.store, Lang: "en", Channels: []alert.Channel{&alert.Webhook{URL: hookSrv.URL}},
		Rules: store.AlertRules{Failures: 3}}
	r := s.replica("r1", n)
	sched := s.schedule(t, "inventory")
	s.fake.SetFaults(kiotvietfake.Faults{Status5xxNext: 1000})
	for i := 1; i <= 3; i++ {
		require.Equal(t, "failed", s.runOnce(t, r, sched))
		n.Flush(context.Background())
		if i < 3 {
			assert.Empty(t, hook.all(), "no alert after %d failure(s)", i)
		}
	}
	texts := hook.all()
	require.Len(t, texts, 1)
	assert.Contains(t, texts[0], "sync for "+s.fake.Credentials().Retailer+" is failing")
	assert.Contains(t, texts[0], "Failed tries in a row: 3")
	assert.Contains(t, texts[0], "What to do:")
}

// Three replicas (three dispatchers, three notifiers with their own channel values) see the same failure
// and scan at the same moment: one message per channel. The same for the recovery.
func TestThreeReplicasOneMessage(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	ch := allChannels(t)
	var reps []*replica
	for _, name := range []string{"a", "b", "c"} {
		reps = append(reps, s.replica(name, &alert.Notifier{Store: s.store, Channels: ch.list()}))
	}
	sched := s.schedule(t, "categories")
	together := func() {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, r := range reps {
			wg.Add(1)
			go func() { defer wg.Done(); <-start; r.n.Flush(context.Background()) }()
		}
		close(start)
		wg.Wait()
	}

	s.fake.SetFaults(kiotvietfake.Faults{Status5xxNext: 1000})
	require.Equal(t, "failed", s.runOnce(t, reps[0], sched))
	together()
	require.Equal(t, "failed", s.runOnce(t, reps[1], sched))
	together()
	h, m, tg := ch.counts(t)
	assert.Equal(t, []int{1, 1, 1}, []int{h, m, tg}, "one failing alert per channel across three replicas")

	s.fake.SetFaults(kiotvietfake.Faults{})
	require.Equal(t, "success", s.runOnce(t, reps[2], sched))
	together()
	h, m, tg = ch.counts(t)
	assert.Equal(t, []int{2, 2, 2}, []int{h, m, tg}, "one recovery alert per channel across three replicas")
}

// Serving replicas deliver in the background when a run kicks them: no Flush by the caller.
func TestServingReplicasDeliverInBackground(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	hookSrv, hook := fakeWebhook(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var reps []*replica
	for _, name := range []string{"a", "b", "c"} {
		n := &alert.Notifier{Store: s.store, Channels: []alert.Channel{&alert.Webhook{URL: hookSrv.URL}}, Interval: 50 * time.Millisecond}
		go n.Run(ctx)
		reps = append(reps, s.replica(name, n))
	}
	sched := s.schedule(t, "categories")
	s.fake.SetFaults(kiotvietfake.Faults{Status5xxNext: 1000})
	require.Equal(t, "failed", s.runOnce(t, reps[0], sched))
	eventually(t, "the failing alert", func() bool { return len(hook.all()) >= 1 })
	// every replica has scanned since (the state is failing for all of them) and nothing more was sent
	var pending int
	eventually(t, "every delivery final", func() bool {
		require.NoError(t, s.db.QueryRow(ctx, `select count(*) from kiotviet_alert_deliveries where status = 'pending'`).Scan(&pending))
		return pending == 0
	})
	for _, r := range reps {
		r.n.Flush(ctx)
	}
	assert.Len(t, hook.all(), 1)
}

// An SMTP server that accepts the connection and never answers: the runs end as if there were no alerts,
// the delivery fails by its own timeout, is kept for retry with the error (no password in it), and
// kiotviet_alert_problems (what `kvsync doctor` shows) reports it.
func TestSMTPDownDelaysNothing(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c // hold it open, say nothing
		}
	}()
	t.Cleanup(func() {
		close(accepted)
		for c := range accepted {
			_ = c.Close()
		}
	})
	const pass = "smtp-password-secret"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var statuses []string
	n := &alert.Notifier{Store: s.store, SendTimeout: 2 * time.Second,
		Channels:   []alert.Channel{&alert.Email{URL: "smtp://alerts:" + pass + "@" + ln.Addr().String(), From: "kvsync@example.com", To: []string{"ops@example.com"}}},
		OnDelivery: func(_, status string) { mu.Lock(); statuses = append(statuses, status); mu.Unlock() }}
	go n.Run(ctx)
	r := s.replica("r1", n)
	sched := s.schedule(t, "categories")
	s.fake.SetFaults(kiotvietfake.Faults{Status5xxNext: 1000})

	require.Equal(t, "failed", s.runOnce(t, r, sched))
	// the send is now stuck in the silent server, and the next run still claims and ends at once
	select {
	case <-time.After(30 * time.Second):
		t.Fatal("the notifier never tried the SMTP server")
	case c := <-accepted:
		accepted <- c
	}
	mu.Lock()
	assert.Empty(t, statuses, "the delivery is still hanging")
	mu.Unlock()
	s.fake.SetFaults(kiotvietfake.Faults{Status5xxNext: 1000})
	require.Equal(t, "failed", s.runOnce(t, r, sched), "a run while the delivery hangs")

	eventually(t, "the delivery to time out", func() bool { mu.Lock(); defer mu.Unlock(); return len(statuses) > 0 })
	mu.Lock()
	assert.Equal(t, "pending", statuses[0], "kept for a retry with backoff")
	mu.Unlock()
	problems, err := s.store.AlertProblems(context.Background())
	require.NoError(t, err)
	require.Len(t, problems, 1)
	assert.Equal(t, "email", problems[0].Channel)
	assert.Equal(t, 1, problems[0].Retrying)
	require.NotNil(t, problems[0].LastError)
	assert.NotContains(t, *problems[0].LastError, pass)
	assert.Contains(t, *problems[0].LastError, "SMTP")
	var next time.Time
	require.NoError(t, s.db.QueryRow(context.Background(), `select next_attempt_at from kiotviet_alert_deliveries`).Scan(&next))
	assert.True(t, next.After(time.Now().Add(10*time.Second)), "the retry waits its backoff")
}

// `kvsync alerts test` (Notifier.Test): every channel gets a test message; a broken one says why, with
// no secret in the reason.
func TestTestMessageSaysWhichChannelFailed(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	ch := allChannels(t)
	tgSrv, tg := fakeTelegram(t, botToken, "-1001234")
	chs := ch.list()
	chs[2] = &alert.Telegram{APIURL: tgSrv.URL, Token: botToken, ChatID: "-999"} // wrong chat
	n := &alert.Notifier{Store: s.store, Channels: chs}
	res, err := n.Test(context.Background())
	require.NoError(t, err)
	require.Len(t, res, 3)
	byName := map[string]error{}
	for _, r := range res {
		byName[r.Channel] = r.Err
	}
	assert.NoError(t, byName["webhook"])
	assert.NoError(t, byName["email"])
	require.Error(t, byName["telegram"])
	assert.Contains(t, byName["telegram"].Error(), "chat not found")
	assert.NotContains(t, byName["telegram"].Error(), botToken)
	assert.Empty(t, tg.all())
	mails := ch.smtp.mails(t)
	require.Len(t, mails, 1)
	assert.Contains(t, mails[0].Text, "tin nhắn thử")
	assert.Len(t, ch.hook.all(), 1)

	_, err = (&alert.Notifier{Store: s.store}).Test(context.Background())
	assert.ErrorContains(t, err, "KIOTVIET_ALERT_SMTP_URL")
}

// A credential KiotViet refuses for good pauses its schedules (the engine's rule): one "paused" message per
// channel, nothing more while it stays paused, and one when it is resumed.
func TestPausedOneMessageEach(t *testing.T) {
	t.Parallel()
	s := newShopWithSecret(t, "a-secret-kiotviet-refuses-0123")
	ch := allChannels(t)
	n := &alert.Notifier{Store: s.store, Channels: ch.list()}
	r := s.replica("r1", n)
	sched := s.schedule(t, "categories")
	ctx := context.Background()

	require.Equal(t, "failed", s.runOnce(t, r, sched))
	var reason *string
	require.NoError(t, s.db.QueryRow(ctx, `select paused_reason from kiotviet_sync_schedules where id = $1`, sched).Scan(&reason))
	require.NotNil(t, reason, "the engine paused the schedule")
	n.Flush(ctx)
	n.Flush(ctx)
	h, m, tg := ch.counts(t)
	assert.Equal(t, []int{1, 1, 1}, []int{h, m, tg}, "one paused alert per channel")
	mails := ch.smtp.mails(t)
	assert.Contains(t, mails[0].Subject, "tạm dừng")
	assert.Contains(t, mails[0].Text, "KiotViet từ chối thông tin kết nối")
	assert.Contains(t, mails[0].Text, "kvsync schedule resume")
	assert.NotContains(t, mails[0].Raw, s.secret)

	_, err := s.store.ResumeSchedules(ctx, s.credID, "")
	require.NoError(t, err)
	n.Flush(ctx)
	h, m, tg = ch.counts(t)
	assert.Equal(t, []int{2, 2, 2}, []int{h, m, tg}, "one message when it is resumed")
	assert.Contains(t, ch.tg.all()[1], "bật lại")
}

// A shop that was receiving KiotViet webhooks and gets none for longer than the limit: one message per
// channel however many replicas look, nothing more while it stays quiet, one when events arrive again.
// Registered but never received is not "stopped" (nothing was working); removing the registrations ends
// the watch without a message.
func TestWebhooksStoppedAndResumedOneMessageEach(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	ch := allChannels(t)
	ctx := context.Background()
	var ns []*alert.Notifier
	for range 3 {
		ns = append(ns, &alert.Notifier{Store: s.store, Channels: ch.list(), Lang: "en",
			Rules: store.AlertRules{WebhooksStoppedAfter: time.Hour}})
	}
	together := func() {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, n := range ns {
			wg.Add(1)
			go func() { defer wg.Done(); <-start; n.Flush(ctx) }()
		}
		close(start)
		wg.Wait()
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := s.db.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	// received is what the webhook receiver stores (functions/kiotvietwebhook), received ago
	received := func(key string, ago time.Duration) {
		exec(`insert into kiotviet_webhook_events (credential_id, dedupe_key, body, status, received_at)
		      values ($1, $2, '{}', 'applied', now() - make_interval(secs => $3))`, s.credID, key, ago.Seconds())
	}

	exec(`insert into kiotviet_webhook_registrations (credential_id, event_type, kiotviet_webhook_id, url)
	      values ($1, 'product.update', 1, 'https://kvsync.example/functions/v1/kiotviet-webhook'),
	             ($1, 'stock.update', 2, 'https://kvsync.example/functions/v1/kiotviet-webhook')`, s.credID)
	together()
	h, m, tg := ch.counts(t)
	assert.Equal(t, []int{0, 0, 0}, []int{h, m, tg}, "registered, never received: nothing stopped")

	received("e1", 2*time.Hour)
	exec(`update kiotviet_webhook_registrations set is_active = false, problem = 'disabled by KiotViet'
	      where credential_id = $1 and event_type = 'stock.update'`, s.credID)
	together()
	together()
	h, m, tg = ch.counts(t)
	assert.Equal(t, []int{1, 1, 1}, []int{h, m, tg}, "one 'webhooks stopped' per channel across three replicas")
	mail := ch.smtp.mails(t)[0]
	assert.Equal(t, "[kvsync] KiotViet stopped sending webhooks for "+s.fake.Credentials().Retailer, mail.Subject)
	assert.Contains(t, mail.Text, "Last webhook event:")
	assert.Contains(t, mail.Text, "Alert after: 1 h 0 min")
	assert.Contains(t, mail.Text, "Disabled by KiotViet: stock.update")
	assert.Contains(t, mail.Text, "kvsync webhooks register --credential "+s.credID)
	assert.Contains(t, ch.tg.all()[0], "stopped sending webhooks")

	received("e2", 0)
	together()
	together()
	h, m, tg = ch.counts(t)
	assert.Equal(t, []int{2, 2, 2}, []int{h, m, tg}, "one recovery per channel when events arrive again")
	assert.Equal(t, "[kvsync] KiotViet sends webhooks for "+s.fake.Credentials().Retailer+" again", ch.smtp.mails(t)[1].Subject)
	assert.Contains(t, ch.hook.all()[1], "KiotViet webhooks arrive again")

	var kinds []string
	rows, err := s.db.Query(ctx, `select kind || ':' || coalesce(details ->> 'previous_state', '')
		from kiotviet_alert_events where dedupe_key like 'webhooks:%' order by created_at`)
	require.NoError(t, err)
	for rows.Next() {
		var k string
		require.NoError(t, rows.Scan(&k))
		kinds = append(kinds, k)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []string{"webhooks_stopped:ok", "recovered:webhooks_stopped"}, kinds, "the events in the database")

	// quiet again, then the registrations are removed: the watch ends, no message either way
	exec(`update kiotviet_webhook_events set received_at = now() - interval '3 hours' where credential_id = $1`, s.credID)
	exec(`delete from kiotviet_webhook_registrations where credential_id = $1`, s.credID)
	together()
	h, m, tg = ch.counts(t)
	assert.Equal(t, []int{2, 2, 2}, []int{h, m, tg}, "no registration, nothing watched")
	var states int
	require.NoError(t, s.db.QueryRow(ctx, `select count(*) from kiotviet_alert_state where subject like 'webhooks:%'`).Scan(&states))
	assert.Zero(t, states)
}

// heldRunner holds every claimed run until release is closed, so a run stays 'running' for as long as the
// test needs; the engine (through Remote) then finishes it as abandoned.
type heldRunner struct{ release chan struct{} }

func (h heldRunner) Carry(ctx context.Context, _ store.Claim) (syncer.Result, error) {
	select {
	case <-h.release:
	case <-ctx.Done():
	}
	return syncer.Result{}, errors.New("released by the test")
}

// Stale and running long reach every channel once: a stream whose last success is older than the limit,
// and a scheduled run going for far longer than the schedule's usual duration (kiotviet_run_stats). The
// clock is moved by moving the run rows back, never by waiting.
func TestStaleAndRunningLongOneMessageEach(t *testing.T) {
	t.Parallel()
	s := newShop(t)
	ch := allChannels(t)
	ctx := context.Background()
	n := &alert.Notifier{Store: s.store, Channels: ch.list(), Lang: "en",
		Rules: store.AlertRules{StaleAfter: time.Hour, LongFactor: 3, LongMin: time.Minute}}
	sched := s.schedule(t, "categories")
	require.Equal(t, "success", s.runOnce(t, s.replica("r1", n), sched))
	n.Flush(ctx)
	h, m, tg := ch.counts(t)
	assert.Equal(t, []int{0, 0, 0}, []int{h, m, tg}, "fresh and nothing running: no news")

	_, err := s.db.Exec(ctx, `update kiotviet_sync_logs set started_at = started_at - interval '3 hours',
		completed_at = completed_at - interval '3 hours' where schedule_id = $1`, sched)
	require.NoError(t, err)
	n.Flush(ctx)
	n.Flush(ctx)
	h, m, tg = ch.counts(t)
	assert.Equal(t, []int{1, 1, 1}, []int{h, m, tg}, "one stale message per channel")
	mail := ch.smtp.mails(t)[0]
	assert.Equal(t, "[kvsync] Categories data of "+s.fake.Credentials().Retailer+" is out of date", mail.Subject)
	assert.Contains(t, mail.Text, "Last successful sync:")

	// a run of the schedule that is still going, started 10 minutes ago (its usual run takes under a second)
	held := heldRunner{release: make(chan struct{})}
	done := make(chan dispatch.RunResult, 1)
	d := dispatch.New(dispatch.Config{Store: s.store, Runner: s.engine.Remote(held), Worker: "held", OnRunDone: func(r dispatch.RunResult) { done <- r }})
	s.makeDue(t, sched)
	tick, err := d.Tick(ctx, 1)
	require.NoError(t, err)
	require.Len(t, tick.Claimed, 1)
	t.Cleanup(func() { close(held.release); <-done })
	_, err = s.db.Exec(ctx, `update kiotviet_sync_logs set started_at = now() - interval '10 minutes' where id = $1`, tick.Claimed[0].RunID)
	require.NoError(t, err)
	n.Flush(ctx)
	n.Flush(ctx)
	h, m, tg = ch.counts(t)
	assert.Equal(t, []int{2, 2, 2}, []int{h, m, tg}, "one running-long message per channel")
	mail = ch.smtp.mails(t)[1]
	assert.Equal(t, "[kvsync] Categories sync for "+s.fake.Credentials().Retailer+" is taking unusually long", mail.Subject)
	assert.Contains(t, mail.Text, "Started:")
	assert.Contains(t, mail.Text, "Usually takes:")
	assert.Contains(t, ch.tg.all()[1], "taking unusually long")
}
