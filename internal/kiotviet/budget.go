package kiotviet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Budget hands out API calls from a per-credential budget shared with every other process (kvsync keeps
// it in Postgres: kiotviet_take_api_calls), so that N replicas together stay under KiotViet's hourly
// limit. Take returns how many of want calls were granted under which grant id; when none are left,
// granted is 0 and resumesAt says when calls free up. Return gives back the unused calls of a grant.
type Budget interface {
	Take(ctx context.Context, want int) (grantID int64, granted int, resumesAt time.Time, err error)
	Return(ctx context.Context, grantID int64, unused int) error
}

// BudgetError is a request refused because the shared API budget is used up; ResumesAt is when calls
// free up again.
type BudgetError struct {
	ResumesAt time.Time
}

// Error reads as the run's error message: "API budget used up; resumes at 14:05" (Vietnam time, the
// shop's).
func (e *BudgetError) Error() string {
	return "API budget used up; resumes at " + e.ResumesAt.In(VietnamZone()).Format("15:04")
}

// ErrBudget matches every *BudgetError with errors.Is.
var ErrBudget = errors.New("API budget used up")

// Is makes errors.Is(err, ErrBudget) true.
func (e *BudgetError) Is(target error) bool { return target == ErrBudget }

// maxGrantAge bounds how long calls taken from the budget may wait in a process before use: a call
// counts in the shared window from when it was granted, so one used much later would fall outside it.
const maxGrantAge = time.Minute

// budgetPool holds the calls a client took from its Budget and has not used yet.
type budgetPool struct {
	b     Budget
	batch int
	now   func() time.Time

	mu      sync.Mutex
	grant   int64
	left    int
	takenAt time.Time
}

// newBudgetPool takes calls in batches of about a hundredth of the hourly limit (1 to 10): small enough
// that what one process holds unused costs the others little, large enough to save round trips.
func newBudgetPool(b Budget, perHour int, now func() time.Time) *budgetPool {
	return &budgetPool{b: b, batch: min(max(perHour/100, 1), 10), now: now}
}

// take uses one call, taking a new batch from the budget when the pool is empty or stale.
func (p *budgetPool) take(ctx context.Context) error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.left > 0 && p.now().Sub(p.takenAt) > maxGrantAge {
		p.giveBackLocked(ctx)
	}
	if p.left == 0 {
		id, n, resumes, err := p.b.Take(ctx, p.batch)
		if err != nil {
			return fmt.Errorf("taking API calls from the shared budget: %w", err)
		}
		if n <= 0 {
			return &BudgetError{ResumesAt: resumes}
		}
		p.grant, p.left, p.takenAt = id, n, p.now()
	}
	p.left--
	return nil
}

// release gives back the calls taken but not used (at the end of a run).
func (p *budgetPool) release(ctx context.Context) error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.giveBackLocked(ctx)
}

func (p *budgetPool) giveBackLocked(ctx context.Context) error {
	if p.left == 0 {
		return nil
	}
	unused, id := p.left, p.grant
	p.left = 0
	return p.b.Return(ctx, id, unused)
}
