package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kvsync/kvsync/internal/secret"
	"github.com/kvsync/kvsync/internal/store"
	"github.com/kvsync/kvsync/internal/syncer"
)

const keysUsage = `
Usage: kvsync keys generate
       kvsync keys rotate

generate prints a new encryption key as a line for .env: KIOTVIET_ENCRYPTION_KEYS=<id>:<base64>.
To rotate to a new key:
  1. put the new key first and keep the old ones after it:  KIOTVIET_ENCRYPTION_KEYS=<new>,<old>
  2. restart kvsync everywhere (the first key encrypts, every key decrypts);
  3. kvsync keys rotate  (re-encrypts every credential's secret and token with the first key);
  4. remove the old keys (and KIOTVIET_ENCRYPTION_KEY) once rotate reports nothing left on them.
rotate is safe to run again: what is already under the first key is left as it is.`

func cmdKeys(ctx context.Context, e env) error {
	sub, e, ok, err := takeSubcommand(e, "keys", keysUsage, "generate", "rotate")
	if !ok {
		return err
	}
	fs := newFlags(e, "keys "+sub, keysUsage)
	if err := parseFlags(fs, e.args); err != nil {
		return err
	}
	switch sub {
	case "generate":
		id, b64, err := secret.GenerateKey()
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s=%s:%s\n", secret.KeysEnv, id, b64)
		fmt.Fprintf(e.stderr, "New key %s. First install: put the line above in .env. Rotating: put it first, "+
			"before the keys in use (%s=%s:…,<old>), restart kvsync, then run 'kvsync keys rotate'.\n", id, secret.KeysEnv, id)
		return nil
	case "rotate":
		return keysRotate(ctx, e)
	}
	return unknownSubcommand("keys", sub, "generate", "rotate")
}

// rotateAttempts bounds the retries when a credential's token is refreshed while it is being rotated.
const rotateAttempts = 5

func keysRotate(ctx context.Context, e env) error {
	a, err := newApp(ctx, e, true)
	if err != nil {
		return err
	}
	defer a.close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	creds, err := a.store.Credentials(ctx)
	if err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	var rotated, current int
	var failures []string
	for _, c := range creds {
		changed, err := rotateOne(ctx, a.store, a.keys, c.ID)
		switch {
		case err != nil:
			failures = append(failures, fmt.Sprintf("  %s (%s): %v", c.ID, c.RetailerName, err))
		case changed:
			rotated++
		default:
			current++
		}
	}
	fmt.Fprintf(e.stdout, "keys rotate: %d credential(s): %d re-encrypted with key %s, %d already on it, %d failed\n",
		len(creds), rotated, a.keys.PrimaryID(), current, len(failures))
	if len(failures) > 0 {
		fmt.Fprintln(e.stdout, strings.Join(failures, "\n"))
		return fmt.Errorf("keys rotate: %d credential(s) could not be re-encrypted: keep the key they were saved with in %s "+
			"(or %s for the earlier system's), or save those connections again", len(failures), secret.KeysEnv, secret.LegacyEnv)
	}
	fmt.Fprintf(e.stdout, "every credential is on key %s: the other keys can be removed from %s\n", a.keys.PrimaryID(), secret.KeysEnv)
	return nil
}

// rotateOne re-encrypts one credential's secret and token with the primary key; the store's compare and
// swap on token_version loses to a token refreshed meanwhile, and then the fresh row is rotated again.
func rotateOne(ctx context.Context, st *store.Store, keys *secret.Keyring, id string) (bool, error) {
	for range rotateAttempts {
		c, err := st.Credential(ctx, id)
		if err != nil {
			return false, err
		}
		changed := false
		var encSecret *string
		if c.EncryptedClientSecret != nil {
			s, ok, err := keys.Reencrypt(*c.EncryptedClientSecret, syncer.SecretAAD(c.ID))
			if err != nil {
				return false, fmt.Errorf("client secret: %w", err)
			}
			encSecret, changed = &s, ok
		}
		token, ok, err := keys.Reencrypt(c.EncryptedToken, syncer.TokenAAD(c.ID))
		if err != nil {
			return false, fmt.Errorf("token: %w", err)
		}
		if !changed && !ok {
			return false, nil
		}
		stored, err := st.ReencryptCredential(ctx, c.ID, encSecret, token, c.TokenVersion)
		if err != nil {
			return false, err
		}
		if stored {
			return true, nil
		}
	}
	return false, fmt.Errorf("its token kept changing during %d attempts: run 'kvsync keys rotate' again", rotateAttempts)
}
