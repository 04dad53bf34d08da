package webhook

import (
	"crypto/rand"
	"encoding/base64"

	"github.com/kvsync/kvsync/internal/secret"
)

// SecretAAD binds a webhook secret's ciphertext to its credential's endpoint row and column, as the
// other secrets are bound to theirs.
func SecretAAD(credentialID string) []byte {
	return secret.ColumnAAD("kiotviet_webhook_endpoints", credentialID, "encrypted_secret")
}

// NewSecret returns a fresh signing secret: 32 random bytes, base64-encoded, as KiotViet's docs ask
// (a random string of at least 8 characters, base64-encoded; the encoded string is what is registered
// and what KiotViet keys the HMAC with).
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}
