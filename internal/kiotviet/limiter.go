package kiotviet

import (
	"context"
	"sync"
	"time"
)

// limiter keeps a client under N requests in any sliding hour, the shape of
// KiotViet's "5000 GET per hour" rule. It records the start time of the
// last N requests in a ring; a request waits until the oldest of them is an
// hour old. A 429 with Retry-After pauses it for every caller.
type limiter struct {
	now   func() time.Time
	sleep func(context.Context, time.Duration) error

	mu          sync.Mutex
	ring        []time.Time // start times, oldest at next once full
	next        int
	full        bool
	pausedUntil time.Time
}

const limiterWindow = time.Hour

// newLimiter returns a limiter for perHour requests; perHour < 0 disables it.
func newLimiter(perHour int, now func() time.Time, sleep func(context.Context, time.Duration) error) *limiter {
	if perHour < 0 {
		return &limiter{now: now, sleep: sleep}
	}
	return &limiter{now: now, sleep: sleep, ring: make([]time.Time, perHour)}
}

// wait blocks until a request may start and records it.
func (l *limiter) wait(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		l.mu.Lock()
		now := l.now()
		var d time.Duration
		if now.Before(l.pausedUntil) {
			d = l.pausedUntil.Sub(now)
		} else if len(l.ring) > 0 && l.full {
			if free := l.ring[l.next].Add(limiterWindow); now.Before(free) {
				d = free.Sub(now)
			}
		}
		if d == 0 {
			if len(l.ring) > 0 {
				l.ring[l.next] = now
				l.next++
				if l.next == len(l.ring) {
					l.next, l.full = 0, true
				}
			}
			l.mu.Unlock()
			return nil
		}
		l.mu.Unlock()
		if err := l.sleep(ctx, d); err != nil {
			return err
		}
	}
}

// pauseUntil holds every request until t (from a 429's Retry-After).
func (l *limiter) pauseUntil(t time.Time) {
	l.mu.Lock()
	if t.After(l.pausedUntil) {
		l.pausedUntil = t
	}
	l.mu.Unlock()
}
