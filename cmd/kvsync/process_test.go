package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/kvsync/kvsync/internal/vocab"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/dispatch"
	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/kiotvietfake"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
	"github.com/kvsync/kvsync/internal/synctest"
	"github.com/kvsync/kvsync/internal/testdb"
	"github.com/kvsync/kvsync/internal/wire"
)

// These tests run the real kvsync binary as a separate process and kill it, as an operator or a
// crashing machine would.

const procCronSecret = "process-test-cron-secret-0123456789abcdef"

type procBundle struct {
	db      *pgxpool.Pool
	fake    *kiotvietfake.Server
	fakeURL string
	store   *store.Store
	keys    *secret.Keyring
	keysEnv string
	credID  string
	sched   string
	bin     string
	env     []string // more environment for the kvsync processes
	nofile  int      // when set, the kvsync processes' file descriptor limit
}

func procSetup(t *testing.T) *procBundle {
	t.Helper()
	b := &procBundle{db: testdb.DB(t), bin: buildBinary(t)}
	b.store = store.New(store.PG{Pool: b.db})
	b.fake = kiotvietfake.New(kiotvietfake.Options{Products: 1500, Branches: 2, Seed: 5, RateLimitPerHour: -1,
		OtherRetailers: []string{"shop-b", "shop-c", "shop-d", "shop-e"}})
	srv := httptest.NewServer(b.fake.Handler())
	t.Cleanup(srv.Close)
	b.fakeURL = srv.URL
	b.keysEnv = "p1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32))
	var err error
	b.keys, err = secret.ParseKeys(b.keysEnv, "")
	require.NoError(t, err)
	ctx := context.Background()
	b.credID, err = synctest.SaveCredential(ctx, b.store, b.keys, b.fake.Credentials())
	require.NoError(t, err)
	b.sched, err = b.store.UpsertSchedule(ctx, store.Schedule{CredentialID: b.credID, SyncType: "products_full", Frequency: "daily", Enabled: true})
	require.NoError(t, err)
	b.makeDue(t)
	return b
}

func (b *procBundle) makeDue(t *testing.T) {
	_, err := b.db.Exec(context.Background(), `update kiotviet_sync_schedules set next_run_at = now() - interval '1 second' where id = $1`, b.sched)
	require.NoError(t, err)
}

// start runs `kvsync serve` and returns the process and its base URL.
func (b *procBundle) start(t *testing.T, extra ...string) (*exec.Cmd, string) {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(b.bin, args...)
	if b.nofile > 0 { // a file descriptor limit for the child, as a small container would have
		cmd = exec.Command("sh", append([]string{"-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, b.nofile), b.bin}, args...)...)
	}
	cmd.Dir = t.TempDir() // no .env there
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+b.db.Config().ConnString(), "KIOTVIET_ENCRYPTION_KEYS="+b.keysEnv, "KIOTVIET_CRON_SECRET="+procCronSecret,
		"KIOTVIET_TOKEN_URL="+b.fakeURL+"/connect/token", "KIOTVIET_API_URL="+b.fakeURL,
		"KVSYNC_LEASE_SECONDS=4", "KVSYNC_LOG_LEVEL=warn")
	cmd.Env = append(cmd.Env, b.env...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	addr := strings.TrimSpace(strings.TrimPrefix(line, "kvsync listening on "))
	return cmd, "http://" + addr
}

func postDispatch(t *testing.T, base string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/functions/v1/kiotviet-schedule-sync", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+procCronSecret)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
}

// waitFor polls the database until cond holds: the other process is outside this test's control, so
// polling its effects with a deadline is the only way to wait for it.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *procBundle) count(t *testing.T) int {
	var n int
	require.NoError(t, b.db.QueryRow(context.Background(), `select count(*) from kiotviet_products_full`).Scan(&n))
	return n
}

func (b *procBundle) runRow(t *testing.T) (id string, status vocab.Status, errText string, leaseOver bool) {
	var e *string
	err := b.db.QueryRow(context.Background(), `select id, status, error_message, coalesce(lease_expires_at < now(), true)
		from kiotviet_sync_logs where schedule_id = $1 order by started_at desc limit 1`, b.sched).Scan(&id, &status, &e, &leaseOver)
	if err != nil {
		return "", "", "", false
	}
	if e != nil {
		errText = *e
	}
	return
}

// an in-process dispatcher, standing for the next replica that ticks.
func (b *procBundle) dispatcher(t *testing.T, done chan dispatch.RunResult) *dispatch.Dispatcher {
	engine, err := syncer.New(syncer.Config{Store: b.store, Keys: b.keys, Worker: "next",
		KiotViet: kiotviet.Config{TokenURL: b.fakeURL + "/connect/token", APIURL: b.fakeURL}})
	require.NoError(t, err)
	return dispatch.New(dispatch.Config{Store: b.store, Runner: engine, Worker: "next",
		OnRunDone: func(r dispatch.RunResult) { done <- r }})
}

func TestKilledWorkerIsRescuedAndNextRunConverges(t *testing.T) {
	t.Parallel()
	b := procSetup(t)
	b.fake.SetFaults(kiotvietfake.Faults{Latency: 60 * time.Millisecond}) // a run of a few seconds
	proc, base := b.start(t)
	postDispatch(t, base)
	waitFor(t, "the first pages to commit", time.Minute, func() bool { return b.count(t) >= 300 })
	require.NoError(t, proc.Process.Signal(syscall.SIGKILL))
	_, _ = proc.Process.Wait()
	committed := b.count(t)
	runID, status, _, _ := b.runRow(t)
	require.Equal(t, vocab.Running, status, "killed mid-run")
	b.fake.SetFaults(kiotvietfake.Faults{})

	waitFor(t, "the dead worker's lease to expire", time.Minute, func() bool { _, _, _, over := b.runRow(t); return over })
	done := make(chan dispatch.RunResult, 4)
	d := b.dispatcher(t, done)
	tick, err := d.Tick(context.Background(), 1)
	require.NoError(t, err)
	require.Len(t, tick.Rescued, 1)
	assert.Equal(t, runID, tick.Rescued[0].RunID)
	_, status, errText, _ := b.runRow(t)
	assert.Equal(t, vocab.Failed, status)
	assert.Contains(t, errText, "stopped heartbeating")
	assert.GreaterOrEqual(t, b.count(t), committed, "nothing committed is lost")

	b.makeDue(t) // skip the backoff
	tick, err = d.Tick(context.Background(), 1)
	require.NoError(t, err)
	require.Len(t, tick.Claimed, 1)
	r := <-done
	require.Equal(t, vocab.Success, r.Result.Status, r.Result.Error)
	diffs, err := synctest.Compare(context.Background(), b.db, b.fake.Snapshot(), false, 10)
	require.NoError(t, err)
	assert.Empty(t, diffs)
}

func TestSIGTERMFinishesOrHandsBackTheRun(t *testing.T) {
	t.Parallel()
	b := procSetup(t)
	b.fake.SetFaults(kiotvietfake.Faults{Latency: 60 * time.Millisecond})
	proc, base := b.start(t, "--grace", "500ms")
	postDispatch(t, base)
	waitFor(t, "the first pages to commit", time.Minute, func() bool { return b.count(t) >= 200 })
	require.NoError(t, proc.Process.Signal(syscall.SIGTERM))
	err := proc.Wait()
	require.NoError(t, err, "kvsync exits 0 on SIGTERM")
	_, status, errText, _ := b.runRow(t)
	assert.NotEqual(t, vocab.Running, status, "the run was finished or handed back, not left running")
	assert.Contains(t, []vocab.Status{vocab.Success, vocab.Failed, vocab.Partial}, status, errText)

	b.fake.SetFaults(kiotvietfake.Faults{})
	done := make(chan dispatch.RunResult, 2)
	b.makeDue(t)
	tick, err := b.dispatcher(t, done).Tick(context.Background(), 1)
	require.NoError(t, err)
	require.Len(t, tick.Claimed, 1, "the credential is free again at once")
	r := <-done
	require.Equal(t, vocab.Success, r.Result.Status, r.Result.Error)
	diffs, err := synctest.Compare(context.Background(), b.db, b.fake.Snapshot(), false, 10)
	require.NoError(t, err)
	assert.Empty(t, diffs)
}

// Two kvsync processes on one database, dispatch calls fired at both at once, over M due schedules of
// several credentials: each schedule runs exactly once.
func TestTwoProcessesRunEachScheduleOnce(t *testing.T) {
	t.Parallel()
	b := procSetup(t)
	ctx := context.Background()
	ids := []string{b.credID}
	for _, shop := range []string{"shop-b", "shop-c", "shop-d", "shop-e"} {
		c := b.fake.Credentials()
		c.Retailer = shop
		id, err := synctest.SaveCredential(ctx, b.store, b.keys, c)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	_, err := b.db.Exec(ctx, `delete from kiotviet_sync_schedules`)
	require.NoError(t, err)
	var schedules []string
	for _, id := range ids {
		for _, st := range []string{"categories", "attributes", "inventory"} {
			s, err := b.store.UpsertSchedule(ctx, store.Schedule{CredentialID: id, SyncType: st, Frequency: "daily", Enabled: true})
			require.NoError(t, err)
			schedules = append(schedules, s)
		}
	}
	_, err = b.db.Exec(ctx, `update kiotviet_sync_schedules set next_run_at = now() - interval '1 minute'`)
	require.NoError(t, err)

	_, base1 := b.start(t)
	_, base2 := b.start(t)
	finished := func() int {
		var n int
		require.NoError(t, b.db.QueryRow(ctx, `select count(*) from kiotviet_sync_schedules where last_status is not null`).Scan(&n))
		return n
	}
	deadline := time.Now().Add(2 * time.Minute)
	for finished() < len(schedules) {
		require.True(t, time.Now().Before(deadline), "schedules left unrun")
		done := make(chan struct{}, 4)
		for _, base := range []string{base1, base2, base1, base2} {
			go func() { postDispatch(t, base); done <- struct{}{} }()
		}
		for range 4 {
			<-done
		}
		time.Sleep(100 * time.Millisecond) // the processes run what they claimed; poll again
	}
	rows, err := b.db.Query(ctx, `select schedule_id, count(*), bool_and(status = 'success') from kiotviet_sync_logs
		where trigger = 'cron' group by schedule_id`)
	require.NoError(t, err)
	runs := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		var ok bool
		require.NoError(t, rows.Scan(&id, &n, &ok))
		runs[id] = n
		assert.True(t, ok, "schedule %s had a run that did not succeed", id)
	}
	require.NoError(t, rows.Err())
	for _, s := range schedules {
		assert.Equal(t, 1, runs[s], "schedule %s ran %d times", s, runs[s])
	}
}

// The attack on a running kvsync serve: clients that hold connections open (idle keep-alives,
// connections that never send a byte, POSTs that announce a body and never send it). With the cap
// filled by them, /healthz and the dispatcher still answer, and the unauthenticated POSTs get their 401
// at once. The process has 128 file descriptors, as the attack had 256: without the cap, the
// 200 held connections would exhaust them ("accept4: too many open files") and nothing would answer.
func TestServeAnswersAtTheConnectionCap(t *testing.T) {
	t.Parallel()
	b := procSetup(t)
	const max, held = 48, 200
	b.env = []string{fmt.Sprintf("KVSYNC_MAX_CONNECTIONS=%d", max)}
	b.nofile = 128
	_, base := b.start(t, "--grace", "1s")
	addr := strings.TrimPrefix(base, "http://")
	for i := 0; i < held; i++ {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		switch i % 3 {
		case 0: // an idle keep-alive after one request
			_, err = fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
			require.NoError(t, err)
			require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			require.NoError(t, err)
			resp.Body.Close()
		case 1: // a POST that announces a body and never sends it: refused without waiting for it
			_, err = fmt.Fprintf(c, "POST /functions/v1/kiotviet-sync HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n")
			require.NoError(t, err)
			require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			require.NoError(t, err, "the 401 comes without the body")
			resp.Body.Close()
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		default: // connected, silent
		}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(base + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	postDispatch(t, base)
}

// apiCalls is how many API requests (token requests aside) the fake has served.
func (b *procBundle) apiCalls() int64 {
	var n int64
	for path, c := range b.fake.Counts() {
		if path != kiotvietfake.TokenPath {
			n += c
		}
	}
	return n
}

// postSync asks a process for a full manual sync and returns the status code and reply.
func postSync(t *testing.T, base, credID string) (int, map[string]any) {
	t.Helper()
	body := fmt.Sprintf(`{"credentialId": %q, "syncType": "products_full", "options": {"full": true}}`, credID)
	req, _ := http.NewRequest(http.MethodPost, base+"/functions/v1/kiotviet-sync", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+procCronSecret)
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

// N replicas together never exceed a credential's API budget (DESIGN.md §8): two kvsync serve processes
// with a budget of 50 calls an hour sync one credential in turn, by dispatch and by manual syncs, each a
// full pass of 1,500 products (17 calls). The fake serves at most 50 API requests between them, the run
// that finds the budget used up ends partial saying when it resumes, and what it wrote stays.
func TestReplicasShareTheAPIBudget(t *testing.T) {
	t.Parallel()
	b := procSetup(t)
	const budget = 50
	b.env = []string{fmt.Sprintf("KIOTVIET_RATE_LIMIT_PER_HOUR=%d", budget)}
	_, a := b.start(t, "--grace", "1s")
	_, c := b.start(t, "--grace", "1s")
	b.fake.ResetCounts()

	var statuses []vocab.Status
	var lastErr string
	dispatch := func(base string) {
		b.makeDue(t)
		req, _ := http.NewRequest(http.MethodPost, base+"/functions/v1/kiotviet-schedule-sync", strings.NewReader(`{"wait": true}`))
		req.Header.Set("Authorization", "Bearer "+procCronSecret)
		resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
		require.NoError(t, err)
		var out wire.DispatchDone
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		resp.Body.Close()
		require.Len(t, out.Runs, 1)
		require.NotNil(t, out.Runs[0].Error)
		statuses = append(statuses, out.Runs[0].Status)
		lastErr = *out.Runs[0].Error
	}
	manual := func(base string) {
		_, out := postSync(t, base, b.credID)
		statuses = append(statuses, vocab.Status(fmt.Sprint(out["status"])))
		lastErr = fmt.Sprint(out["error"])
	}
	dispatch(a) // the schedule's first run is a full pass
	manual(c)
	manual(a)
	dispatch(c)
	t.Logf("runs: %v; last error %q", statuses, lastErr)

	assert.LessOrEqual(t, b.apiCalls(), int64(budget), "the two processes together stayed within the budget")
	assert.Equal(t, []vocab.Status{vocab.Success, vocab.Success, vocab.Partial, vocab.Partial}, statuses)
	assert.Regexp(t, `^API budget used up; resumes at \d\d:\d\d$`, lastErr)
	var granted int
	require.NoError(t, b.db.QueryRow(context.Background(),
		`select coalesce(sum(n), 0) from kiotviet_api_grants where credential_id = $1`, b.credID).Scan(&granted))
	assert.LessOrEqual(t, granted, budget)
	assert.GreaterOrEqual(t, int64(granted), b.apiCalls(), "every call served was taken from the shared budget")
}
