package syncer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
)

// Column bindings of the credential ciphertexts (AES-GCM additional data): a ciphertext copied to another
// row or column does not decrypt.
const credentialsTable = "kiotviet_credentials"

// TokenAAD and SecretAAD bind a credential's token and client secret to its row.
func TokenAAD(credentialID string) []byte {
	return secret.ColumnAAD(credentialsTable, credentialID, "encrypted_token")
}

// SecretAAD binds a credential's client secret to its row.
func SecretAAD(credentialID string) []byte {
	return secret.ColumnAAD(credentialsTable, credentialID, "encrypted_client_secret")
}

// dbTokens is a kiotviet.TokenSource that keeps the credential's token, encrypted, in the database: every
// kvsync process (and replica) shares it, refreshes it ahead of expiry, and stores a refresh with
// compare-and-swap, so two processes refreshing at once never overwrite each other's newer token.
type dbTokens struct {
	store  *store.Store
	keys   *secret.Keyring
	cfg    kiotviet.Config
	credID string
	margin time.Duration
	now    func() time.Time

	mu     sync.Mutex // one fetch at a time per credential in this process
	cached kiotviet.Token
}

func (t *dbTokens) Token(ctx context.Context) (kiotviet.Token, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cached.Valid(t.now(), t.margin) {
		return t.cached, nil
	}
	for attempt := 0; attempt < 3; attempt++ {
		c, err := t.store.Credential(ctx, t.credID)
		if err != nil {
			return kiotviet.Token{}, err
		}
		if c.TokenExpiresAt != nil && c.EncryptedToken != "" {
			plain, err := t.keys.Decrypt(c.EncryptedToken, TokenAAD(c.ID))
			if err == nil {
				tok := kiotviet.Token{AccessToken: string(plain), ExpiresAt: *c.TokenExpiresAt}
				if tok.Valid(t.now(), t.margin) && tok.AccessToken != t.cached.AccessToken {
					t.cached = tok
					return tok, nil
				}
			}
			// an undecryptable stored token (key rotated away, earlier system's token) is simply replaced
		}
		if c.EncryptedClientSecret == nil {
			return kiotviet.Token{}, fmt.Errorf("credential %s has no client secret: save the KiotViet connection again", c.ID)
		}
		sec, err := t.keys.Decrypt(*c.EncryptedClientSecret, SecretAAD(c.ID))
		if err != nil {
			return kiotviet.Token{}, fmt.Errorf("credential %s: decrypt the client secret: %w (is KIOTVIET_ENCRYPTION_KEYS the key it was saved with?)", c.ID, err)
		}
		tok, err := kiotviet.FetchToken(ctx, t.cfg, kiotviet.Credentials{Retailer: c.RetailerName, ClientID: c.ClientID, ClientSecret: string(sec)})
		if err != nil {
			return kiotviet.Token{}, err
		}
		enc, err := t.keys.Encrypt([]byte(tok.AccessToken), TokenAAD(c.ID))
		if err != nil {
			return kiotviet.Token{}, err
		}
		_, ok, err := t.store.StoreToken(ctx, c.ID, enc, tok.ExpiresAt, c.TokenVersion)
		if err != nil {
			return kiotviet.Token{}, err
		}
		if ok {
			t.cached = tok
			return tok, nil
		}
		// another process stored a token first: read it back and use that one
		t.cached = kiotviet.Token{}
	}
	return kiotviet.Token{}, fmt.Errorf("credential %s: token refresh kept racing with other processes", t.credID)
}

// Invalidate forgets a token KiotViet refused; the next Token() fetches a fresh one even if the stored
// copy has not expired.
func (t *dbTokens) Invalidate(_ context.Context, bad kiotviet.Token) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cached.AccessToken != "" && t.cached.AccessToken != bad.AccessToken {
		return // a late 401 for an older token: the newer one stays
	}
	t.cached = kiotviet.Token{AccessToken: bad.AccessToken} // remembered as bad, never Valid
}
