// Package kiotviet is a client for the KiotViet Retail Public API: the
// client-credentials token, the list endpoints kvsync reads (categories,
// products, productOnHands, branches, attributes), paging, a per-credential
// rate limiter, retries with backoff, and tolerant decoding of KiotViet's
// loosely specified JSON.
//
// One Client serves one credential (retailer). Keep it for the life of the
// process so that its rate limiter remembers the calls of the past hour.
package kiotviet

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Defaults applied by Config when a field is left at its zero value.
const (
	// DefaultTokenURL is KiotViet's identity server token endpoint.
	DefaultTokenURL = "https://id.kiotviet.vn/connect/token"
	// DefaultAPIURL is the Retail Public API base URL (no version segment).
	DefaultAPIURL = "https://public.kiotapi.com"
	// DefaultRateLimitPerHour is KiotViet's documented GET budget per hour.
	DefaultRateLimitPerHour = 5000
	// DefaultMaxAttempts bounds the tries of one request (first try included).
	DefaultMaxAttempts = 5
	// DefaultRequestTimeout bounds one HTTP attempt, body included.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultBackoffBase is the first retry delay before jitter.
	DefaultBackoffBase = time.Second
	// DefaultBackoffMax caps one retry delay.
	DefaultBackoffMax = 2 * time.Minute
	// DefaultMaxRetryAfter is the longest Retry-After the client waits out;
	// a longer one fails the request with a *RateLimitError instead, so a
	// scheduler can come back later rather than hold a run open.
	DefaultMaxRetryAfter = 5 * time.Minute
	// DefaultTokenRefreshMargin is how long before expiry a cached token is
	// replaced (capped at a fifth of the token's lifetime).
	DefaultTokenRefreshMargin = 5 * time.Minute
	// MaxPageSize is KiotViet's documented maximum pageSize.
	MaxPageSize = 100
	// MinPageSize is the smallest pageSize a caller may ask for: every page is one call from the
	// shop's hourly budget, so a tiny page (pageSize 1: 322 calls for 300 products instead of 4) would
	// spend it for nothing. 50 at most doubles the calls of a full pass.
	MinPageSize = 50
	// DefaultReadConcurrency is how many pages of one listing are requested
	// at once. Four hides most of the latency of a distant API (a page is
	// ~100 ms away from a server outside Vietnam) while a shop's pages stay
	// a small burst: the hourly budget counts the same calls either way, and
	// a server that finds four too many answers 429, which the client waits
	// out (Retry-After, or backoff).
	DefaultReadConcurrency = 4
	// MaxReadConcurrency bounds ReadConcurrency.
	MaxReadConcurrency = 16
)

// Config holds what every request needs. The zero value of each field means
// its default, so Config{} talks to the real KiotViet. One Config may be
// shared by the clients of many credentials; set HTTPClient so that they
// also share connections.
type Config struct {
	// TokenURL is the token endpoint; default DefaultTokenURL.
	TokenURL string
	// APIURL is the API base URL without a trailing slash; default DefaultAPIURL.
	APIURL string
	// HTTPClient carries every request; default NewHTTPClient().
	HTTPClient *http.Client
	// RateLimitPerHour is the GET budget per credential in any sliding hour;
	// 0 means DefaultRateLimitPerHour, a negative value disables the limiter.
	RateLimitPerHour int
	// Budget, when set, is the credential's API budget shared with other processes: every request
	// takes a call from it first, and a request finds it used up fails with *BudgetError.
	Budget Budget
	// ReadConcurrency is how many pages of one listing are requested at
	// once; default DefaultReadConcurrency, at most MaxReadConcurrency.
	ReadConcurrency int
	// MaxAttempts bounds the tries of one request; default DefaultMaxAttempts.
	MaxAttempts int
	// RequestTimeout bounds one attempt; default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// BackoffBase and BackoffMax shape the exponential backoff.
	BackoffBase, BackoffMax time.Duration
	// MaxRetryAfter is the longest Retry-After waited out; default DefaultMaxRetryAfter.
	MaxRetryAfter time.Duration
	// TokenRefreshMargin is how early cached tokens are refreshed.
	TokenRefreshMargin time.Duration
	// Now is the clock for tokens, backoff and the limiter; default time.Now.
	Now func() time.Time
	// Sleep waits d or until ctx is done; default a timer. Tests inject a
	// recorder so that nothing really sleeps.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter maps a backoff delay to the delay actually waited; default a
	// uniform pick in [d/2, d]. Tests inject the identity.
	Jitter func(d time.Duration) time.Duration
	// OnRetry, when set, is called with the endpoint's path before each retry (for metrics).
	OnRetry func(path string)
	// Logger receives retry and token events; default discards.
	Logger *slog.Logger
}

// withDefaults returns cfg with every zero field replaced by its default.
func (cfg Config) withDefaults() Config {
	cfg.TokenURL = cmp.Or(cfg.TokenURL, DefaultTokenURL)
	cfg.APIURL = trimSlash(cmp.Or(cfg.APIURL, DefaultAPIURL))
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = NewHTTPClient()
	}
	cfg.RateLimitPerHour = cmp.Or(cfg.RateLimitPerHour, DefaultRateLimitPerHour)
	cfg.ReadConcurrency = min(max(cmp.Or(cfg.ReadConcurrency, DefaultReadConcurrency), 1), MaxReadConcurrency)
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	cfg.RequestTimeout = cmp.Or(cfg.RequestTimeout, DefaultRequestTimeout)
	cfg.BackoffBase = cmp.Or(cfg.BackoffBase, DefaultBackoffBase)
	cfg.BackoffMax = cmp.Or(cfg.BackoffMax, DefaultBackoffMax)
	cfg.MaxRetryAfter = cmp.Or(cfg.MaxRetryAfter, DefaultMaxRetryAfter)
	cfg.TokenRefreshMargin = cmp.Or(cfg.TokenRefreshMargin, DefaultTokenRefreshMargin)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = SleepContext
	}
	if cfg.Jitter == nil {
		cfg.Jitter = halfJitter
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return cfg
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

// NewHTTPClient returns the http.Client the package uses when Config has
// none: bounded dial, TLS and header timeouts and a pool of kept-alive
// connections per host. Create one per process and put it in Config so all
// credentials reuse the same connections.
func NewHTTPClient() *http.Client {
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}
}

// SleepContext waits for d or until ctx is done, whichever comes first, and
// returns ctx.Err() in the second case. It is the default Config.Sleep.
func SleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// PageSizeOK is the one rule for a page size a caller asks for: 0 (the default, MaxPageSize) or a
// whole number from MinPageSize to MaxPageSize.
func PageSizeOK(n int) bool { return n == 0 || (n >= MinPageSize && n <= MaxPageSize) }
