package synctest

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kvsync/kvsync/internal/kiotviet"
	"github.com/kvsync/kvsync/internal/kiotvietfake"
	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
)

// StackOptions shape a Stack; zero values mean the defaults in parentheses.
type StackOptions struct {
	Fake        kiotvietfake.Options
	MaxAttempts int                             // of the KiotViet client (its default)
	NoBackoff   bool                            // retries without waiting (tests of faults)
	Wrap        func(http.Handler) http.Handler // around the fake's handler, e.g. to watch requests
}

// Stack is the thing most tests exercise, the engine, with its collaborators: a fake KiotViet shop
// served over HTTP, a keyring, the store on the test's database, and the fake shop's credential saved
// as an active connection. It is built once here instead of in every test package.
type Stack struct {
	Fake     *kiotvietfake.Server
	FakeURL  string
	Keys     *secret.Keyring
	Store    *store.Store
	KiotViet kiotviet.Config // the client configuration pointing at the fake
	Engine   *syncer.Engine
	CredID   string
}

// NewStack builds a Stack on db; the fake's server stops when the test ends.
func NewStack(t testing.TB, db *pgxpool.Pool, o StackOptions) *Stack {
	t.Helper()
	s := &Stack{Fake: kiotvietfake.New(o.Fake), Store: store.New(store.PG{Pool: db})}
	var h http.Handler = s.Fake.Handler()
	if o.Wrap != nil {
		h = o.Wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s.FakeURL = srv.URL
	var err error
	if s.Keys, err = secret.ParseKeys("k1:"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)), ""); err != nil {
		t.Fatalf("keys: %v", err)
	}
	s.KiotViet = kiotviet.Config{TokenURL: srv.URL + "/connect/token", APIURL: srv.URL, MaxAttempts: o.MaxAttempts}
	if o.NoBackoff {
		s.KiotViet.Sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	}
	if s.Engine, err = syncer.New(syncer.Config{Store: s.Store, Keys: s.Keys, KiotViet: s.KiotViet, Worker: "test"}); err != nil {
		t.Fatalf("engine: %v", err)
	}
	if s.CredID, err = SaveCredential(context.Background(), s.Store, s.Keys, s.Fake.Credentials()); err != nil {
		t.Fatalf("save the fake shop's credential: %v", err)
	}
	return s
}
