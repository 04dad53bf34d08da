package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestVerifyAcceptsThePublicEncodingsAndNothingElse(t *testing.T) {
	t.Parallel()
	secret := []byte("c2VjcmV0LXNlY3JldA==")
	body := []byte(`{"Id":"a","Notifications":[]}`)
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	mac := m.Sum(nil)
	hx := hex.EncodeToString(mac)
	for _, h := range []string{Sign(secret, body), "sha1=" + hx, "sha256=" + hx, "SHA256=" + strings.ToUpper(hx), hx,
		base64.StdEncoding.EncodeToString(mac), base64.RawURLEncoding.EncodeToString(mac), " sha1=" + hx + " "} {
		assert.True(t, Verify(secret, body, h), h)
	}
	other := hmac.New(sha256.New, []byte("another secret"))
	other.Write(body)
	sha1ofBody := hmac.New(sha256.New, secret)
	sha1ofBody.Write(append(body, ' '))
	for _, h := range []string{"", "sha1=", "sha1=" + hex.EncodeToString(other.Sum(nil)),
		"sha1=" + hex.EncodeToString(sha1ofBody.Sum(nil)), "sha1=" + hx[:40], "md5=" + hx, hx + "00", "garbage"} {
		assert.False(t, Verify(secret, body, h), h)
	}
	assert.False(t, Verify(nil, body, Sign(nil, body)), "an empty secret verifies nothing")
}
