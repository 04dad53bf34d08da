package kiotviet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Client calls the KiotViet API for one retailer. It is safe for concurrent
// use; all its requests share one rate limiter and one TokenSource.
type Client struct {
	cfg      Config
	retailer string
	ts       TokenSource
	lim      *limiter
	budget   *budgetPool // nil without Config.Budget

	calls      atomic.Int64
	ceiling    atomic.Int32 // pages read ahead at most now: ReadConcurrency, lowered by 429s
	okStreak   atomic.Int32 // successful requests since the ceiling last moved
	mu         sync.Mutex
	byEndpoint map[string]int64
}

// New returns a client for the retailer (the Retailer header value) using
// ts for bearer tokens. Zero Config fields take their defaults.
func New(cfg Config, retailer string, ts TokenSource) *Client {
	cfg = cfg.withDefaults()
	c := &Client{
		cfg:        cfg,
		retailer:   retailer,
		ts:         ts,
		lim:        newLimiter(cfg.RateLimitPerHour, cfg.Now, cfg.Sleep),
		byEndpoint: make(map[string]int64),
	}
	if cfg.Budget != nil && cfg.RateLimitPerHour > 0 {
		c.budget = newBudgetPool(cfg.Budget, cfg.RateLimitPerHour, cfg.Now)
	}
	c.ceiling.Store(int32(cfg.ReadConcurrency))
	return c
}

// ReadConcurrency is how many pages a listing may have requested at once right now: the configured
// ReadConcurrency, halved by every 429 (a server that finds it too many), and raised by one again after
// every okToRaise successful requests in a row, back up to the configured value.
func (c *Client) ReadConcurrency() int { return int(c.ceiling.Load()) }

const okToRaise = 20

func (c *Client) throttled() {
	c.okStreak.Store(0)
	for {
		n := c.ceiling.Load()
		if c.ceiling.CompareAndSwap(n, max(n/2, 1)) {
			return
		}
	}
}

func (c *Client) succeeded() {
	if c.okStreak.Add(1) < okToRaise {
		return
	}
	c.okStreak.Store(0)
	for {
		n := c.ceiling.Load()
		if n >= int32(c.cfg.ReadConcurrency) || c.ceiling.CompareAndSwap(n, n+1) {
			return
		}
	}
}

// ReleaseBudget gives back to the shared budget the calls this client took and did not use; call it
// when a run ends.
func (c *Client) ReleaseBudget(ctx context.Context) error { return c.budget.release(ctx) }

// Calls returns how many HTTP requests this client has sent to the API
// (retries included, token requests excluded), for run statistics.
func (c *Client) Calls() int64 { return c.calls.Load() }

// CallsByEndpoint returns Calls split by endpoint path, e.g. "/products".
func (c *Client) CallsByEndpoint() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int64, len(c.byEndpoint))
	for k, v := range c.byEndpoint {
		m[k] = v
	}
	return m
}

func (c *Client) count(endpoint string) {
	c.calls.Add(1)
	c.mu.Lock()
	c.byEndpoint[endpoint]++
	c.mu.Unlock()
}

// maxAPIBody bounds one API reply held in memory.
const maxAPIBody = 64 << 20

// get performs a GET on path with the query, retrying as the package
// documents, and hands the 200 body to decode. A body that fails to decode
// is retried too (a truncated transfer looks the same).
func (c *Client) get(ctx context.Context, path string, q url.Values, decode func([]byte) error) error {
	u := c.cfg.APIURL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var (
		reauthed bool
		wait     time.Duration
		lastErr  error
	)
	for attempt := 1; ; attempt++ {
		if wait > 0 {
			c.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "kiotviet retry",
				slog.String("endpoint", path), slog.Int("attempt", attempt),
				slog.Duration("wait", wait), slog.String("error", lastErr.Error()))
			if c.cfg.OnRetry != nil {
				c.cfg.OnRetry(path)
			}
			if err := c.cfg.Sleep(ctx, wait); err != nil {
				return fmt.Errorf("kiotviet: GET %s: %w (after: %w)", path, err, lastErr)
			}
		}
		if err := c.lim.wait(ctx); err != nil {
			return fmt.Errorf("kiotviet: GET %s: waiting for rate limiter: %w", path, err)
		}
		// every attempt is one call of the shop's hourly budget, shared with the other replicas
		if err := c.budget.take(ctx); err != nil {
			return err
		}
		tok, err := c.ts.Token(ctx)
		if err != nil {
			return fmt.Errorf("kiotviet: GET %s: getting token: %w", path, err)
		}
		status, hdr, body, err := c.attempt(ctx, u, tok)
		c.count(path)
		if err != nil {
			terr := transportError(ctx, http.MethodGet, path, err)
			if !retryableTransport(ctx, err) || attempt >= c.cfg.MaxAttempts {
				return terr
			}
			wait, lastErr = backoff(c.cfg, attempt), terr
			continue
		}
		if status == http.StatusOK {
			c.succeeded()
			derr := decode(body)
			if derr == nil {
				return nil
			}
			derr = fmt.Errorf("kiotviet: GET %s: decoding reply: %w", path, derr)
			if attempt >= c.cfg.MaxAttempts {
				return derr
			}
			wait, lastErr = backoff(c.cfg, attempt), derr
			continue
		}
		apiErr := newAPIError(http.MethodGet, path, status, body)
		switch {
		case apiErr.unauthorized():
			if reauthed {
				return apiErr
			}
			// One re-authentication per request; it does not use up a try.
			reauthed = true
			c.ts.Invalidate(ctx, tok)
			c.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "kiotviet token refused, re-authenticating",
				slog.String("endpoint", path), slog.Int("status", status), slog.String("code", apiErr.Code))
			wait = 0
			attempt--
			continue
		case status == http.StatusTooManyRequests:
			c.throttled()
			wait = backoff(c.cfg, attempt)
			if d, ok := parseRetryAfter(hdr.Get("Retry-After"), c.cfg.Now()); ok {
				if d > c.cfg.MaxRetryAfter {
					return &RateLimitError{APIError: apiErr, RetryAfter: d}
				}
				c.lim.pauseUntil(c.cfg.Now().Add(d))
				wait = d
			}
		case apiErr.temporary():
			wait = backoff(c.cfg, attempt)
		default:
			return apiErr
		}
		if attempt >= c.cfg.MaxAttempts {
			return apiErr
		}
		lastErr = apiErr
	}
}

// attempt sends one request and reads the whole reply within the attempt's
// own timeout.
func (c *Client) attempt(ctx context.Context, u string, tok Token) (int, http.Header, []byte, error) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, nil, errors.New("bad request URL")
	}
	req.Header.Set("Retailer", c.retailer)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "kvsync")
	resp, body, err := send(c.cfg.HTTPClient, req, maxAPIBody)
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, body, nil
}

// send does the request and reads at most limit bytes of the body; the body
// is always drained (bounded) and closed so the connection can be reused.
func send(hc *http.Client, req *http.Request, limit int64) (*http.Response, []byte, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		_ = resp.Body.Close()
	}()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(body)) > limit {
		return nil, nil, fmt.Errorf("reply larger than %d bytes", limit)
	}
	return resp, body, nil
}

// transportError describes a failed round trip without the URL (the
// url.Error text would repeat the query) and keeps ctx errors matchable.
func transportError(ctx context.Context, method, endpoint string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("kiotviet: %s %s: %w", method, endpoint, ctxErr)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("kiotviet: %s %s: request timed out: %w", method, endpoint, err)
	}
	return fmt.Errorf("kiotviet: %s %s: %w", method, endpoint, err)
}

// retryableTransport reports whether a transport failure is worth another
// try: timeouts, resets and broken bodies are; certificate problems and a
// cancelled caller are not.
func retryableTransport(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	if errors.As(err, &certErr) || errors.As(err, &unknownAuth) || errors.As(err, &hostErr) {
		return false
	}
	return true
}

// backoff returns the jittered delay before retry number n (1-based).
func backoff(cfg Config, n int) time.Duration {
	d := cfg.BackoffBase
	for i := 1; i < n && d < cfg.BackoffMax; i++ {
		d *= 2
	}
	return cfg.Jitter(min(d, cfg.BackoffMax))
}

// halfJitter picks a delay uniformly in [d/2, d] so that clients that failed
// together do not retry together.
func halfJitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(d-half)+1))
}

// retryAfterErr carries a 429's Retry-After through the token retry loop.
type retryAfterErr struct {
	api *APIError
	d   time.Duration
}

func (e *retryAfterErr) Error() string { return e.api.Error() }

// parseRetryAfter reads a Retry-After header in seconds or as an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			secs = 0
		}
		if secs > 7*24*3600 {
			secs = 7 * 24 * 3600
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// endpointOf is the path part of a URL, for error messages.
func endpointOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Path == "" {
		return "token endpoint"
	}
	return u.Path
}
