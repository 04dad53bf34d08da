package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kvsync/kvsync/internal/store"
)

// DispatchResult is the dispatcher case: N dispatchers claiming M due schedules at once.
type DispatchResult struct {
	Profile     string      `json:"profile"`
	Schedules   int         `json:"schedules"`
	Credentials int         `json:"credentials"`
	Dispatchers int         `json:"dispatchers"`
	ClaimLimit  int         `json:"claimLimit"`
	Claimed     int         `json:"claimed"`
	Duplicates  int         `json:"duplicates"` // log rows beyond the first for one schedule
	Missed      int         `json:"missed"`     // due schedules never claimed
	Errors      int         `json:"errors"`     // failed claim or finish calls (retried)
	Seconds     float64     `json:"seconds"`
	ClaimsPerS  float64     `json:"claimsPerSecond"`
	Tick        *TickResult `json:"tick,omitempty"`
}

// TickResult is the tick case: every shop has one due schedule, and the dispatchers claim (without
// running) until nothing is due, as the ticks of several replicas fired at once would.
type TickResult struct {
	Shops         int     `json:"shops"`
	Dispatchers   int     `json:"dispatchers"`
	ClaimLimit    int     `json:"claimLimit"`
	Claimed       int     `json:"claimed"`
	Duplicates    int     `json:"duplicates"`
	Missed        int     `json:"missed"`
	Errors        int     `json:"errors"`
	Seconds       float64 `json:"seconds"`
	ClaimMedianMS float64 `json:"claimMedianMs"` // one kiotviet_claim_due call
	ClaimMaxMS    float64 `json:"claimMaxMs"`
}

// runTick fills the database with shops credentials, one due schedule each, and lets the dispatchers
// claim up to limit schedules per call until nothing is due. The claimed runs are left running (a tick
// only claims); every schedule must end with exactly one run row.
func runTick(ctx context.Context, pool *pgxpool.Pool, cfg Config, shops, limit int) (TickResult, error) {
	res := TickResult{Shops: shops, Dispatchers: cfg.Dispatchers, ClaimLimit: limit}
	if _, err := pool.Exec(ctx, truncateAll); err != nil {
		return res, err
	}
	if err := loadSchedules(ctx, pool, shops, shops); err != nil {
		return res, err
	}
	if _, err := pool.Exec(ctx, "analyze public.kiotviet_credentials, public.kiotviet_sync_schedules, public.kiotviet_sync_logs"); err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var (
		mu      sync.Mutex
		callsMS []float64
		errs    atomic.Int64
		claimed atomic.Int64
		wg      sync.WaitGroup
		start   = make(chan struct{})
	)
	for i := range cfg.Dispatchers {
		p, err := connect(ctx, cfg.DatabaseURL, 1)
		if err != nil {
			return res, err
		}
		defer p.Close()
		st := store.New(store.PG{Pool: p})
		worker := fmt.Sprintf("bench-tick-%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for ctx.Err() == nil {
				t := time.Now()
				claims, err := st.ClaimDue(ctx, worker, limit, 10*time.Minute)
				d := ms(time.Since(t))
				if err != nil {
					errs.Add(1)
					continue
				}
				mu.Lock()
				callsMS = append(callsMS, d)
				mu.Unlock()
				if len(claims) == 0 {
					// another dispatcher may hold the rest locked for a moment: stop once nothing
					// claimable is left (every shop has one schedule, so a claimed one is running)
					var left int
					if err := p.QueryRow(ctx, claimable).Scan(&left); err != nil {
						errs.Add(1)
						continue
					}
					if left == 0 {
						return
					}
					continue
				}
				claimed.Add(int64(len(claims)))
			}
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	res.Seconds = time.Since(began).Seconds()
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("the tick did not claim every due schedule: %w", err)
	}
	res.Claimed, res.Errors = int(claimed.Load()), int(errs.Load())
	res.ClaimMedianMS = median(callsMS)
	for _, d := range callsMS {
		res.ClaimMaxMS = max(res.ClaimMaxMS, d)
	}
	if err := pool.QueryRow(ctx, countRuns, shops).Scan(&res.Duplicates, &res.Missed); err != nil {
		return res, err
	}
	_, err := pool.Exec(ctx, truncateAll)
	return res, err
}

// claimable counts the due schedules of active credentials that have no running run.
const claimable = `select count(*) from public.kiotviet_sync_schedules s
	join public.kiotviet_credentials c on c.id = s.credential_id and c.is_active
	where s.enabled and s.next_run_at <= now()
	  and not exists (select from public.kiotviet_sync_logs l where l.credential_id = s.credential_id and l.status = 'running')`

// countRuns is the duplicates (run rows beyond the first of a schedule) and the missed (schedules
// without one) among $1 schedules.
const countRuns = `select coalesce(sum(n - 1), 0), $1 - count(*)
	from (select s.id, count(l.id) n from public.kiotviet_sync_schedules s
	        left join public.kiotviet_sync_logs l on l.schedule_id = s.id group by s.id) x
	where n > 0`

// loadSchedules inserts credentials and hourly schedules, due a minute to ten ago, spread over them
// (up to 6 per credential, one per sync type).
func loadSchedules(ctx context.Context, pool *pgxpool.Pool, schedules, credentials int) error {
	perCred := (schedules + credentials - 1) / credentials
	if perCred > 6 {
		return fmt.Errorf("%d schedules need at least %d credentials (6 sync types each)", schedules, (schedules+5)/6)
	}
	if _, err := pool.Exec(ctx, `insert into public.kiotviet_credentials (retailer_name, client_id, encrypted_token, is_active)
		select 'bench' || i, 'client' || i, 'not-a-token', true from generate_series(1, $1) i`, credentials); err != nil {
		return err
	}
	// Loaded with triggers off (session_replication_role): calculate_next_run_time costs ~20 ms per
	// inserted row (see the bench notes in the README), and next_run_at is given here anyway.
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.Exec(ctx, `set local session_replication_role = replica`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `insert into public.kiotviet_sync_schedules (credential_id, sync_type, frequency, enabled, next_run_at)
		select c.id, t.sync_type, 'hourly', true, now() - make_interval(secs => 60 + random() * 600)
		  from public.kiotviet_credentials c
		 cross join unnest(array['products_full', 'products', 'categories', 'inventory', 'attributes', 'all']) with ordinality t(sync_type, n)
		 where t.n <= $1
		 order by c.id, t.n
		 limit $2`, perCred, schedules); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// runDispatch fills the database with due schedules spread over credentials (a credential's schedules
// are claimed one at a time: one running run per credential), then lets the dispatchers, each on a
// connection of its own, call kiotviet_claim_due in a loop and finish every claimed run at once as a
// success (which frees the credential and moves the schedule to its next slot, an hour away), until
// nothing is due. Every schedule must have exactly one run row.
func runDispatch(ctx context.Context, pool *pgxpool.Pool, cfg Config) (DispatchResult, error) {
	res := DispatchResult{Schedules: cfg.Schedules, Credentials: cfg.Credentials, Dispatchers: cfg.Dispatchers, ClaimLimit: cfg.ClaimLimit}
	if _, err := pool.Exec(ctx, truncateAll); err != nil {
		return res, err
	}
	if err := loadSchedules(ctx, pool, cfg.Schedules, cfg.Credentials); err != nil {
		return res, err
	}
	var errs atomic.Int64
	var claimed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for i := range cfg.Dispatchers {
		p, err := connect(ctx, cfg.DatabaseURL, 1) // a connection of its own, as a replica has
		if err != nil {
			return res, err
		}
		defer p.Close()
		st := store.New(store.PG{Pool: p})
		worker := fmt.Sprintf("bench-dispatcher-%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				claims, err := st.ClaimDue(ctx, worker, cfg.ClaimLimit, time.Minute)
				if err != nil {
					errs.Add(1)
					continue
				}
				if len(claims) == 0 {
					var due int
					if err := p.QueryRow(ctx, `select count(*) from public.kiotviet_sync_schedules where enabled and next_run_at <= now()`).Scan(&due); err != nil {
						errs.Add(1)
						continue
					}
					if due == 0 {
						return
					}
					continue // the rest belongs to credentials another dispatcher is running now
				}
				claimed.Add(int64(len(claims)))
				for _, c := range claims {
					for {
						_, err := st.FinishRun(ctx, c.RunID, store.Finish{Status: "success"})
						if err == nil || ctx.Err() != nil {
							break
						}
						errs.Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("dispatchers did not drain the due schedules: %w", err)
	}
	res.Seconds = elapsed.Seconds()
	res.Claimed = int(claimed.Load())
	res.Errors = int(errs.Load())
	res.ClaimsPerS = float64(res.Claimed) / elapsed.Seconds()
	if err := pool.QueryRow(ctx, countRuns, cfg.Schedules).Scan(&res.Duplicates, &res.Missed); err != nil {
		return res, err
	}
	_, err := pool.Exec(ctx, truncateAll)
	return res, err
}
