package syncer

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/kvsync/kvsync/internal/errs"
	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
)

// Connection is a KiotViet connection to check and save.
type Connection struct {
	Retailer, ClientID, ClientSecret string
	UserID                           *string // the admin saving it; nil from the CLI
}

// Connect checks a connection live with KiotViet (a token, then one categories request with the
// Retailer header, as the earlier function did), encrypts the secret and the token for a new row, and
// stores it as the active credential: the owner's older credentials are deactivated and their schedules
// move to the new one. It returns the new credential's id. A refusal by KiotViet is coded errs.Invalid, an unreachable KiotViet errs.Upstream.
func Connect(ctx context.Context, st *store.Store, keys *secret.Keyring, kv kiotviet.Config, c Connection) (string, error) {
	c.Retailer, c.ClientID, c.ClientSecret = strings.TrimSpace(c.Retailer), strings.TrimSpace(c.ClientID), strings.TrimSpace(c.ClientSecret)
	creds := kiotviet.Credentials{Retailer: c.Retailer, ClientID: c.ClientID, ClientSecret: c.ClientSecret}
	tok, err := kiotviet.FetchToken(ctx, kv, creds)
	if err != nil {
		return "", rejected(err)
	}
	client := kiotviet.New(kv, c.Retailer, staticToken{tok})
	p := client.Categories(kiotviet.ListOptions{PageSize: 1, MaxPages: 1})
	p.Next(ctx)
	if err := p.Err(); err != nil {
		return "", rejected(err)
	}
	return Save(ctx, st, keys, c, tok)
}

// Save encrypts a connection's secret and token for a new row and stores it as the active credential
// (the owner's older ones deactivated, their schedules moved to it), without asking KiotViet: Connect
// calls it once the connection checked out; tests and tools that already trust the credentials call it
// directly. It returns the new credential's id.
func Save(ctx context.Context, st *store.Store, keys *secret.Keyring, c Connection, tok kiotviet.Token) (string, error) {
	id := newUUID()
	encSecret, err := keys.Encrypt([]byte(c.ClientSecret), SecretAAD(id))
	if err != nil {
		return "", err
	}
	encToken, err := keys.Encrypt([]byte(tok.AccessToken), TokenAAD(id))
	if err != nil {
		return "", err
	}
	err = st.SaveCredential(ctx, store.NewCredential{ID: id, UserID: c.UserID, RetailerName: c.Retailer,
		ClientID: c.ClientID, EncryptedClientSecret: encSecret, EncryptedToken: encToken, TokenExpiresAt: tok.ExpiresAt})
	if err != nil {
		return "", err
	}
	return id, nil
}

// rejected codes a failed live check: errs.Invalid when KiotViet refused the credentials (wrong client
// id, secret or retailer), errs.Upstream when it could not be asked (network, 5xx, rate limit).
func rejected(err error) error {
	var api *kiotviet.APIError
	if errors.As(err, &api) && (api.Status == 400 || api.Status == 401 || api.Status == 403) {
		return errs.Wrap(errs.Invalid, err, "KiotViet rejected the retailer name, client id or client secret")
	}
	return errs.Wrap(errs.Upstream, err, "KiotViet could not be reached; try again")
}

type staticToken struct{ t kiotviet.Token }

func (s staticToken) Token(context.Context) (kiotviet.Token, error) { return s.t, nil }
func (s staticToken) Invalidate(context.Context, kiotviet.Token)    {}

// newUUID returns a random (version 4) UUID: the id is needed before the insert, since the ciphertexts
// are bound to it.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
