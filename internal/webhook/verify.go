package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// SignatureHeader is where KiotViet puts the signature.
const SignatureHeader = "X-Hub-Signature"

// Sign returns the signature KiotViet sends for body: "sha1=" and the hex HMAC-SHA256 of the raw body
// keyed with the registered secret string. (KiotViet labels it sha1; receivers fixed against live
// traffic compare exactly this. The fake sends the same.)
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha1=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks header against HMAC-SHA256(secret, body) in constant time. The encodings public
// receivers accept are all accepted: "sha1=<hex>" (what KiotViet sends), "sha256=<hex>", bare hex
// (either case), and standard or URL-safe base64 with or without padding. Anything else, an empty
// header or an empty secret is a mismatch.
func Verify(secret, body []byte, header string) bool {
	if len(secret) == 0 {
		return false
	}
	got, ok := decodeSignature(header)
	if !ok {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

func decodeSignature(h string) ([]byte, bool) {
	h = strings.TrimSpace(h)
	if i := strings.IndexByte(h, '='); i > 0 && i < 8 {
		switch strings.ToLower(h[:i]) {
		case "sha1", "sha256":
			h = h[i+1:]
		}
	}
	if len(h) == 64 {
		if b, err := hex.DecodeString(h); err == nil {
			return b, true
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(h); err == nil && len(b) == sha256.Size {
			return b, true
		}
	}
	return nil, false
}
