package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kvsync/kvsync/internal/redact"
)

// maxJWKSBody bounds what a (possibly hostile or broken) JWKS endpoint can make kvsync read.
const maxJWKSBody = 1 << 20

type publicKey struct {
	alg string // the JWK's alg, "" when it did not say
	key any    // *ecdsa.PublicKey (P-256) or *rsa.PublicKey
}

func (k publicKey) fits(alg string) bool {
	switch alg {
	case "ES256":
		ec, ok := k.key.(*ecdsa.PublicKey)
		return ok && ec.Curve == elliptic.P256()
	case "RS256":
		_, ok := k.key.(*rsa.PublicKey)
		return ok
	}
	return false
}

// jwksCache fetches and caches the project's signing keys. A key set is trusted for ttl; an
// unknown kid triggers a refetch, but never more than one fetch per minRefresh. A failed refresh
// keeps the last good set in use, so a short JWKS outage does not lock out known keys.
type jwksCache struct {
	url        string
	client     *http.Client
	now        func() time.Time
	ttl        time.Duration
	minRefresh time.Duration
	timeout    time.Duration

	fetching chan struct{} // one fetch at a time; waiting honours the caller's context

	mu        sync.Mutex
	keys      map[string]publicKey
	fetchedAt time.Time // last successful fetch
	triedAt   time.Time // last attempt, successful or not
	lastErr   error     // outcome of the last attempt
}

func newJWKSCache(cfg Config) *jwksCache {
	c := &jwksCache{
		url:        cfg.JWKSURL,
		client:     cfg.HTTPClient,
		now:        cfg.Now,
		ttl:        cfg.JWKSCacheTTL,
		minRefresh: cfg.JWKSMinRefresh,
		timeout:    cfg.JWKSTimeout,
		fetching:   make(chan struct{}, 1),
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.ttl == 0 {
		c.ttl = DefaultJWKSCacheTTL
	}
	if c.minRefresh == 0 {
		c.minRefresh = DefaultJWKSMinRefresh
	}
	if c.timeout == 0 {
		c.timeout = DefaultJWKSTimeout
	}
	if c.client == nil {
		c.client = &http.Client{Timeout: c.timeout}
	}
	return c
}

func (c *jwksCache) lookup(kid string) (publicKey, bool, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.keys[kid]
	fresh := !c.fetchedAt.IsZero() && c.now().Sub(c.fetchedAt) < c.ttl
	return k, ok, fresh
}

func (c *jwksCache) key(ctx context.Context, kid string) (publicKey, error) {
	if k, ok, fresh := c.lookup(kid); ok && fresh {
		return k, nil
	}
	refreshErr := c.refresh(ctx)
	k, ok, _ := c.lookup(kid)
	switch {
	case ok:
		return k, nil // fresh after the refresh, or stale but the refresh failed
	case refreshErr != nil:
		return publicKey{}, refreshErr
	}
	return publicKey{}, fmt.Errorf("no key with kid %q in the JWKS", kid)
}

// refresh fetches the key set unless another fetch happened within minRefresh, in which case it
// returns that attempt's outcome.
func (c *jwksCache) refresh(ctx context.Context) error {
	select {
	case c.fetching <- struct{}{}:
		defer func() { <-c.fetching }()
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}

	c.mu.Lock()
	now := c.now()
	if !c.triedAt.IsZero() && now.Sub(c.triedAt) < c.minRefresh {
		err := c.lastErr
		c.mu.Unlock()
		return err
	}
	c.triedAt = now
	c.mu.Unlock()

	keys, err := c.fetch(ctx)

	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.lastErr = fmt.Errorf("%w: %w", ErrUnavailable, err)
		return c.lastErr
	}
	c.keys, c.fetchedAt, c.lastErr = keys, now, nil
	return nil
}

type rawJWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	N   string `json:"n"`
	E   string `json:"e"`
}

func (c *jwksCache) fetch(ctx context.Context) (map[string]publicKey, error) {
	// Detached from the caller's cancellation: one impatient client must not spoil the fetch for
	// everyone (a failed attempt blocks refetches for minRefresh). The timeout still bounds it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks request: %w", redact.Error(err))
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks fetch: %w", redact.Error(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks fetch: status %d", resp.StatusCode)
	}
	var doc struct {
		Keys []rawJWK `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJWKSBody)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("jwks decode: %w", err)
	}
	keys := make(map[string]publicKey, len(doc.Keys))
	for _, j := range doc.Keys {
		if j.Kid == "" || (j.Use != "" && j.Use != "sig") {
			continue
		}
		k, err := parseJWK(j)
		if err != nil {
			continue // symmetric, unsupported or broken entries are skipped, not fatal
		}
		keys[j.Kid] = k
	}
	return keys, nil
}

func b64url(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// parseJWK accepts only the public key types kvsync verifies with: EC P-256 and RSA ≥ 2048 bits.
// Symmetric ("oct") keys are refused: HS256 uses SUPABASE_JWT_SECRET and nothing else.
func parseJWK(j rawJWK) (publicKey, error) {
	switch j.Kty {
	case "EC":
		if j.Crv != "P-256" {
			return publicKey{}, errors.New("unsupported curve")
		}
		x, errX := b64url(j.X)
		y, errY := b64url(j.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return publicKey{}, errors.New("bad EC coordinates")
		}
		point := append(append([]byte{4}, x...), y...)
		pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point) // checks the point is on the curve
		if err != nil {
			return publicKey{}, err
		}
		return publicKey{alg: j.Alg, key: pk}, nil
	case "RSA":
		n, errN := b64url(j.N)
		e, errE := b64url(j.E)
		if errN != nil || errE != nil || len(e) == 0 || len(e) > 4 {
			return publicKey{}, errors.New("bad RSA parameters")
		}
		exp := int(new(big.Int).SetBytes(e).Int64())
		mod := new(big.Int).SetBytes(n)
		if mod.BitLen() < 2048 || exp < 3 || exp%2 == 0 {
			return publicKey{}, errors.New("weak RSA key")
		}
		return publicKey{alg: j.Alg, key: &rsa.PublicKey{N: mod, E: exp}}, nil
	}
	return publicKey{}, errors.New("unsupported key type")
}
