package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/kvsync/kvsync/internal/errs"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
)

const credentialsUsage = `
Usage: kvsync credentials add --retailer R --client-id ID    (client secret on stdin)
       kvsync credentials list [--retailer R] [--active] [--ids] [--json]
       kvsync credentials deactivate ID

add checks the connection live with KiotViet (a token and one request), encrypts the secret and the token
with KIOTVIET_ENCRYPTION_KEYS and stores it as the retailer's active credential: an older credential of
the same retailer is deactivated and its schedules move to the new one. The client secret is read from
stdin, never from a flag (flags end up in shell history and process lists):
    printf %s "$KIOTVIET_CLIENT_SECRET" | kvsync credentials add --retailer myshop --client-id ID
list never prints a secret. deactivate stops a credential from being synced.`

func cmdCredentials(ctx context.Context, e env) error {
	sub, e, ok, err := takeSubcommand(e, "credentials", credentialsUsage, "add", "list", "deactivate")
	if !ok {
		return err
	}
	switch sub {
	case "add":
		return credentialsAdd(ctx, e)
	case "list", "ls":
		return credentialsList(ctx, e)
	case "deactivate":
		return credentialsDeactivate(ctx, e)
	}
	return unknownSubcommand("credentials", sub, "add", "list", "deactivate")
}

// maxSecretLen bounds what is read from stdin: a KiotViet client secret is about 40 characters.
const maxSecretLen = 4096

func credentialsAdd(ctx context.Context, e env) error {
	fs := newFlags(e, "credentials add", credentialsUsage)
	retailer := fs.String("retailer", "", "KiotViet retailer (the shop name in <retailer>.kiotviet.vn)")
	clientID := fs.String("client-id", "", "client id (KiotViet: Settings > API connection)")
	fs.Bool("client-secret-stdin", true, "read the client secret from stdin (the only way; accepted for scripts that say so)")
	if err := parseFlags(fs, e.args); err != nil {
		return err
	}
	if strings.TrimSpace(*retailer) == "" || strings.TrimSpace(*clientID) == "" {
		return errors.New("credentials add: --retailer and --client-id are required")
	}
	if isTerminal(e.stdin) {
		return errors.New(`credentials add: the client secret is read from stdin, and stdin is a terminal: pipe it in, e.g.
    printf %s "$KIOTVIET_CLIENT_SECRET" | kvsync credentials add --retailer ` + *retailer + ` --client-id ` + *clientID)
	}
	raw, err := io.ReadAll(io.LimitReader(e.stdin, maxSecretLen+1))
	if err != nil {
		return fmt.Errorf("credentials add: read the client secret from stdin: %w", err)
	}
	if len(raw) > maxSecretLen {
		return errors.New("credentials add: stdin holds more than a client secret: pipe only the secret")
	}
	sec := strings.TrimSpace(string(raw))
	clear(raw)
	if sec == "" {
		return errors.New(`credentials add: no client secret on stdin: printf %s "$KIOTVIET_CLIENT_SECRET" | kvsync credentials add --retailer R --client-id C`)
	}
	a, err := newApp(ctx, e, true)
	if err != nil {
		return err
	}
	defer a.close()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	id, err := syncer.Connect(cctx, a.store, a.keys, a.kiotviet, syncer.Connection{Retailer: *retailer, ClientID: *clientID, ClientSecret: sec})
	if err != nil {
		switch errs.CodeOf(err) {
		case errs.Invalid:
			return fmt.Errorf("credentials add: %w: check the retailer name, client id and secret (KiotViet: Settings > API connection)", err)
		case errs.Upstream:
			return fmt.Errorf("credentials add: %w: check the network and KIOTVIET_TOKEN_URL / KIOTVIET_API_URL (now %s, %s)", err, a.cfg.TokenURL, a.cfg.APIURL)
		}
		return dbError("credentials add", err)
	}
	fmt.Fprintf(e.stderr, "KiotViet accepted the connection for %s; saved as the active credential:\n", strings.TrimSpace(*retailer))
	fmt.Fprintln(e.stdout, id)
	return nil
}

func credentialsList(ctx context.Context, e env) error {
	fs := newFlags(e, "credentials list", credentialsUsage)
	retailer := fs.String("retailer", "", "only this retailer's credentials")
	active := fs.Bool("active", false, "only active credentials")
	ids := fs.Bool("ids", false, "print only the ids, one a line (for scripts)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, e.args); err != nil {
		return err
	}
	a, qctx, done, err := connect(ctx, e, false)
	if err != nil {
		return err
	}
	defer done()
	all, err := a.store.Credentials(qctx)
	if err != nil {
		return dbError("credentials list", err)
	}
	creds := []store.Credential{}
	for _, c := range all {
		if (*retailer == "" || strings.EqualFold(c.RetailerName, *retailer)) && (!*active || c.IsActive) {
			c.EncryptedClientSecret, c.EncryptedToken = nil, "" // never printed, even as ciphertext
			creds = append(creds, c)
		}
	}
	switch {
	case *ids:
		for _, c := range creds {
			fmt.Fprintln(e.stdout, c.ID)
		}
		return nil
	case *asJSON:
		type item struct {
			ID             string     `json:"id"`
			RetailerName   string     `json:"retailer_name"`
			ClientID       string     `json:"client_id"`
			IsActive       bool       `json:"is_active"`
			UserID         *string    `json:"user_id"`
			TokenExpiresAt *time.Time `json:"token_expires_at"`
			CreatedAt      *time.Time `json:"created_at"`
		}
		out := make([]item, len(creds))
		for i, c := range creds {
			out[i] = item{c.ID, c.RetailerName, c.ClientID, c.IsActive, c.UserID, c.TokenExpiresAt, c.CreatedAt}
		}
		return writeJSON(e.stdout, out)
	}
	if len(creds) == 0 {
		_, err := io.WriteString(e.stdout, "no credentials: add one with printf %s \"$SECRET\" | kvsync credentials add --retailer R --client-id ID\n")
		return err
	}
	tw := newTable(e.stdout, "ID", "RETAILER", "CLIENT ID", "ACTIVE", "TOKEN EXPIRES", "CREATED")
	for _, c := range creds {
		active := "yes"
		if !c.IsActive {
			active = "no"
		}
		row(tw, c.ID, c.RetailerName, c.ClientID, active, timeOrDash(c.TokenExpiresAt), timeOrDash(c.CreatedAt))
	}
	return tw.Flush()
}

func credentialsDeactivate(ctx context.Context, e env) error {
	fs := newFlags(e, "credentials deactivate", credentialsUsage)
	if err := fs.Parse(e.args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("credentials deactivate: give one credential id (see 'kvsync credentials list')")
	}
	id := fs.Arg(0)
	a, qctx, done, err := connect(ctx, e, false)
	if err != nil {
		return err
	}
	defer done()
	ok, err := a.store.DeactivateCredential(qctx, id)
	if err != nil {
		if errs.CodeOf(err) == errs.Invalid {
			return fmt.Errorf("credentials deactivate: %q is not a credential id (a UUID): see 'kvsync credentials list'", id)
		}
		return dbError("credentials deactivate", err)
	}
	if !ok {
		return fmt.Errorf("credentials deactivate: no credential %s: see 'kvsync credentials list'", id)
	}
	fmt.Fprintf(e.stdout, "credential %s deactivated: its schedules no longer run (a run in progress finishes)\n", id)
	return nil
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}
