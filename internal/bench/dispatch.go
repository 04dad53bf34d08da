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
	Schedules   int     `json:"schedules"`
	Credentials int     `json:"credentials"`
	Dispatchers int     `json:"dispatchers"`
	ClaimLimit  int     `json:"claimLimit"`
	Claimed     int     `json:"claimed"`
	Duplicates  int     `json:"duplicates"` // log rows beyond the first for one schedule
	Missed      int     `json:"missed"`     // due schedules never claimed
	Errors      int     `json:"errors"`     // failed claim or finish calls (retried)
	Seconds     float64 `json:"seconds"`
	ClaimsPerS  float64 `json:"claimsPerSecond"`
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
	perCred := (cfg.Schedules + cfg.Credentials - 1) / cfg.Credentials
	if perCred > 6 {
		return res, fmt.Errorf("%d schedules need at least %d credentials (6 sync types each)", cfg.Schedules, (cfg.Schedules+5)/6)
	}
	if _, err := pool.Exec(ctx, `insert into public.kiotviet_credentials (retailer_name, client_id, encrypted_token, is_active)
		select 'bench' || i, 'client' || i, 'not-a-token', true from generate_series(1, $1) i`, cfg.Credentials); err != nil {
		return res, err
	}
	// Loaded with triggers off (session_replication_role): calculate_next_run_time costs ~20 ms per
	// inserted row (see the bench notes in the README), and next_run_at is given here anyway.
	tx, err := pool.Begin(ctx)
	if err != nil {
		return res, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.Exec(ctx, `set local session_replication_role = replica`); err != nil {
		return res, err
	}
	if _, err := tx.Exec(ctx, `insert into public.kiotviet_sync_schedules (credential_id, sync_type, frequency, enabled, next_run_at)
		select c.id, t.sync_type, 'hourly', true, now() - make_interval(secs => 60 + random() * 600)
		  from public.kiotviet_credentials c
		 cross join unnest(array['products_full', 'products', 'categories', 'inventory', 'attributes', 'all']) with ordinality t(sync_type, n)
		 where t.n <= $1
		 order by c.id, t.n
		 limit $2`, perCred, cfg.Schedules); err != nil {
		return res, err
	}
	if err := tx.Commit(ctx); err != nil {
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
	err = pool.QueryRow(ctx, `select coalesce(sum(n - 1), 0), $1 - count(*)
		from (select s.id, count(l.id) n from public.kiotviet_sync_schedules s
		        left join public.kiotviet_sync_logs l on l.schedule_id = s.id group by s.id) x
		where n > 0`, cfg.Schedules).Scan(&res.Duplicates, &res.Missed)
	if err != nil {
		return res, err
	}
	_, err = pool.Exec(ctx, truncateAll)
	return res, err
}
