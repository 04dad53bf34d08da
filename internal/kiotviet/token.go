package kiotviet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Credentials identify one KiotViet shop connection. ClientSecret is a
// secret: the package never puts it in an error or a log line.
type Credentials struct {
	Retailer     string // the shop's subdomain name, sent as the Retailer header
	ClientID     string
	ClientSecret string
}

// Token is a bearer token and the time it stops working. ExpiresAt comes
// from the expires_in KiotViet returned, never from an assumed lifetime.
type Token struct {
	AccessToken string
	ExpiresAt   time.Time
}

// Valid reports whether the token is set and still usable at now with the
// given safety margin left.
func (t Token) Valid(now time.Time, margin time.Duration) bool {
	return t.AccessToken != "" && now.Add(margin).Before(t.ExpiresAt)
}

// String hides the token so that printing a Token cannot leak it.
func (t Token) String() string {
	return fmt.Sprintf("Token{expires %s}", t.ExpiresAt.Format(time.RFC3339))
}

// LogValue hides the token from slog as well.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// defaultTokenTTL is assumed when the token reply carries no usable
// expires_in: the shortest lifetime seen in practice.
const defaultTokenTTL = time.Hour

// FetchToken asks the token endpoint for a new token with the
// client-credentials grant exactly as KiotViet documents it (form fields
// scopes=PublicApi.Access, grant_type, client_id, client_secret). It retries
// 5xx, 429 and network failures with backoff; refused credentials give an
// error matching ErrUnauthorized. The "save credentials" flow uses it to
// check credentials live.
func FetchToken(ctx context.Context, cfg Config, c Credentials) (Token, error) {
	cfg = cfg.withDefaults()
	return fetchToken(ctx, cfg, c)
}

func fetchToken(ctx context.Context, cfg Config, c Credentials) (Token, error) {
	form := url.Values{
		"scopes":        {"PublicApi.Access"},
		"grant_type":    {"client_credentials"},
		"client_id":     {c.ClientID},
		"client_secret": {c.ClientSecret},
	}.Encode()
	endpoint := endpointOf(cfg.TokenURL)
	var lastErr error
	for attempt := 1; attempt <= cfg.MaxAttempts; attempt++ {
		if attempt > 1 {
			d := backoff(cfg, attempt-1)
			var rae *retryAfterErr
			if errors.As(lastErr, &rae) {
				if rae.d > cfg.MaxRetryAfter {
					return Token{}, &RateLimitError{APIError: rae.api, RetryAfter: rae.d}
				}
				d = max(d, rae.d)
			}
			cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "kiotviet token retry",
				slog.String("endpoint", endpoint), slog.Int("attempt", attempt),
				slog.Duration("wait", d), slog.String("error", lastErr.Error()))
			if err := cfg.Sleep(ctx, d); err != nil {
				return Token{}, fmt.Errorf("kiotviet: POST %s: %w", endpoint, err)
			}
		}
		tok, err, retry := tokenAttempt(ctx, cfg, endpoint, form)
		if err == nil {
			return tok, nil
		}
		if !retry || ctx.Err() != nil {
			var rae *retryAfterErr
			if errors.As(err, &rae) {
				return Token{}, rae.api
			}
			return Token{}, err
		}
		lastErr = err
	}
	var rae *retryAfterErr
	if errors.As(lastErr, &rae) {
		return Token{}, rae.api
	}
	return Token{}, lastErr
}

// tokenAttempt makes one POST to the token endpoint.
func tokenAttempt(ctx context.Context, cfg Config, endpoint, form string) (Token, error, bool) {
	actx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, cfg.TokenURL, strings.NewReader(form))
	if err != nil {
		return Token{}, fmt.Errorf("kiotviet: POST %s: bad token URL", endpoint), false
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, body, err := send(cfg.HTTPClient, req, maxTokenBody)
	if err != nil {
		return Token{}, transportError(ctx, http.MethodPost, endpoint, err), retryableTransport(ctx, err)
	}
	if resp.StatusCode != http.StatusOK {
		apiErr := newAPIError(http.MethodPost, endpoint, resp.StatusCode, body)
		if apiErr.Status >= 400 && apiErr.Status < 500 && apiErr.Status != 429 && apiErr.Status != 408 {
			apiErr.authFailure = true
		}
		if apiErr.Status == 429 {
			if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), cfg.Now()); ok {
				return Token{}, &retryAfterErr{api: apiErr, d: d}, true
			}
		}
		return Token{}, apiErr, apiErr.temporary()
	}
	var tr struct {
		AccessToken string  `json:"access_token"`
		ExpiresIn   flexInt `json:"expires_in"`
		TokenType   string  `json:"token_type"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return Token{}, fmt.Errorf("kiotviet: POST %s: malformed token reply", endpoint), true
	}
	ttl := time.Duration(tr.ExpiresIn.V) * time.Second
	if ttl <= 0 {
		ttl = defaultTokenTTL
	}
	return Token{AccessToken: tr.AccessToken, ExpiresAt: cfg.Now().Add(ttl)}, nil, false
}

// maxTokenBody bounds the token reply read into memory.
const maxTokenBody = 64 << 10

// TokenSource hands out bearer tokens for one credential. The sync engine
// implements it over the database so tokens survive restarts; the client
// calls Invalidate with a token KiotViet refused so the next Token call
// fetches a fresh one.
type TokenSource interface {
	Token(ctx context.Context) (Token, error)
	Invalidate(ctx context.Context, bad Token)
}

// NewTokenSource returns an in-memory TokenSource: it caches the token,
// refreshes it ahead of expiry and lets only one fetch run at a time (other
// callers wait for its result).
func NewTokenSource(cfg Config, creds Credentials) TokenSource {
	return &memTokenSource{cfg: cfg.withDefaults(), creds: creds}
}

type memTokenSource struct {
	cfg   Config
	creds Credentials

	mu       sync.Mutex
	tok      Token
	margin   time.Duration
	inflight *tokenCall
}

type tokenCall struct {
	done chan struct{}
	tok  Token
	err  error
}

// Token returns the cached token or fetches one (single-flight).
func (s *memTokenSource) Token(ctx context.Context) (Token, error) {
	for {
		s.mu.Lock()
		if s.tok.Valid(s.cfg.Now(), s.margin) {
			t := s.tok
			s.mu.Unlock()
			return t, nil
		}
		if call := s.inflight; call != nil {
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return Token{}, ctx.Err()
			case <-call.done:
			}
			if call.err == nil {
				return call.tok, nil
			}
			// The leader's own context may have ended; try again with ours.
			if errors.Is(call.err, context.Canceled) || errors.Is(call.err, context.DeadlineExceeded) {
				continue
			}
			return Token{}, call.err
		}
		call := &tokenCall{done: make(chan struct{})}
		s.inflight = call
		s.mu.Unlock()

		start := s.cfg.Now()
		call.tok, call.err = fetchToken(ctx, s.cfg, s.creds)

		s.mu.Lock()
		s.inflight = nil
		if call.err == nil {
			s.tok = call.tok
			s.margin = min(s.cfg.TokenRefreshMargin, call.tok.ExpiresAt.Sub(start)/5)
		}
		s.mu.Unlock()
		close(call.done)
		if call.err != nil {
			return Token{}, call.err
		}
		return call.tok, nil
	}
}

// Invalidate forgets the cached token if it is the refused one; a token
// already replaced by another caller is left alone, so concurrent 401s
// cause one refresh, not many.
func (s *memTokenSource) Invalidate(_ context.Context, bad Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok.AccessToken == bad.AccessToken {
		s.tok = Token{}
	}
}
