// Package secret encrypts the KiotViet client secret and access token that kvsync keeps in
// kiotviet_credentials. The key never enters the database: the table holds ciphertext only.
//
// Two formats are read:
//
//   - v1 (written by kvsync): "v1:<keyid>:<base64(nonce‖ciphertext‖tag)>", AES-256-GCM with a
//     12-byte random nonce. The GCM additional data is the "v1:<keyid>:" header followed by the
//     caller's binding (see ColumnAAD), so a ciphertext copied to another row or column, or
//     relabelled with another key id, fails to decrypt.
//   - legacy (written by the earlier Deno functions): "base64(iv‖ciphertext‖tag)" with no prefix
//     and no additional data, under KIOTVIET_ENCRYPTION_KEY. It still decrypts; NeedsRotation
//     reports it so that re-encryption upgrades it to v1.
//
// Standard base64 never contains ':', so the two formats cannot be confused.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Names of the environment variables the keys come from. They appear in ParseKeys' errors so
// that an operator knows which variable to fix; they live here so every caller spells them alike.
const (
	KeysEnv   = "KIOTVIET_ENCRYPTION_KEYS"
	LegacyEnv = "KIOTVIET_ENCRYPTION_KEY"
)

// LegacyKeyID is the id the legacy KIOTVIET_ENCRYPTION_KEY takes inside a Keyring. It is reserved
// while that variable is set, and it is the id v1 ciphertexts carry when the legacy key is the
// only key (so an install that has not adopted KIOTVIET_ENCRYPTION_KEYS still gets row binding).
const LegacyKeyID = "legacy"

// KeySize is the AES-256 key length in bytes; keys of any other size are refused rather than
// silently selecting AES-128 or AES-192.
const KeySize = 32

const (
	version1  = "v1"
	nonceSize = 12
	tagSize   = 16
	maxIDLen  = 64
)

// Errors Decrypt returns, for callers that must tell "the key is gone" (an operator removed a key
// still in use) from "this value is damaged or belongs elsewhere". Neither carries key material.
var (
	// ErrUnknownKey means the ciphertext names a key id that is not in the keyring.
	ErrUnknownKey = errors.New("secret: ciphertext uses a key id that is not configured")
	// ErrDecrypt means authentication failed: wrong key, wrong binding (AAD) or tampered data.
	ErrDecrypt = errors.New("secret: cannot decrypt: wrong key, wrong row/column binding, or corrupted ciphertext")
	// ErrMalformed means the value is not a ciphertext in any known format.
	ErrMalformed = errors.New("secret: malformed ciphertext")
)

// ConfigError is a problem with one of the key variables. Var names the variable so that
// configuration code can report it as its own; Problem never contains key material.
type ConfigError struct {
	Var     string // KeysEnv or LegacyEnv
	Problem string
}

// Error reads "VARIABLE: problem".
func (e *ConfigError) Error() string { return e.Var + ": " + e.Problem }

func configErr(name, format string, args ...any) error {
	return &ConfigError{Var: name, Problem: fmt.Sprintf(format, args...)}
}

type key struct {
	id   string
	aead cipher.AEAD
}

// Keyring holds the AES-256-GCM keys kvsync may use: the primary key encrypts, every key
// decrypts. Build it once with ParseKeys and share it; it is safe for concurrent use.
//
// A Keyring never prints its keys: String, GoString and LogValue show key ids only.
type Keyring struct {
	primary key
	byID    map[string]key
	ids     []string    // configuration order, for String
	legacy  cipher.AEAD // KIOTVIET_ENCRYPTION_KEY, for unprefixed ciphertexts; nil when unset
}

// ParseKeys builds a Keyring from the values of KIOTVIET_ENCRYPTION_KEYS ("id:base64key,…", the
// first entry encrypts) and the legacy KIOTVIET_ENCRYPTION_KEY (base64 of 32 bytes). Either may be
// empty, not both. When only the legacy key is set it becomes the primary key under LegacyKeyID.
//
// Errors are *ConfigError: they name the variable, the entry and the problem, never the key.
func ParseKeys(keysEnv, legacyEnv string) (*Keyring, error) {
	kr := &Keyring{byID: map[string]key{}}

	if s := strings.TrimSpace(legacyEnv); s != "" {
		aead, err := newAEAD(s)
		if err != nil {
			return nil, configErr(LegacyEnv, "%v", err)
		}
		kr.legacy = aead
	}

	if strings.TrimSpace(keysEnv) != "" {
		for i, entry := range strings.Split(keysEnv, ",") {
			n := i + 1
			entry = strings.TrimSpace(entry)
			if entry == "" {
				return nil, configErr(KeysEnv, "entry %d is empty", n)
			}
			id, b64, ok := strings.Cut(entry, ":")
			if !ok {
				return nil, configErr(KeysEnv, "entry %d: want id:base64key", n)
			}
			id = strings.TrimSpace(id)
			if err := checkID(id); err != nil {
				return nil, configErr(KeysEnv, "entry %d: %v", n, err)
			}
			if id == LegacyKeyID && kr.legacy != nil {
				return nil, configErr(KeysEnv, "entry %d: key id %q is reserved for %s while it is set", n, id, LegacyEnv)
			}
			if _, dup := kr.byID[id]; dup {
				return nil, configErr(KeysEnv, "entry %d: duplicate key id %q", n, id)
			}
			aead, err := newAEAD(strings.TrimSpace(b64))
			if err != nil {
				return nil, configErr(KeysEnv, "key %q: %v", id, err)
			}
			kr.add(key{id: id, aead: aead})
		}
	}

	switch {
	case len(kr.ids) > 0:
		kr.primary = kr.byID[kr.ids[0]]
	case kr.legacy != nil:
		kr.add(key{id: LegacyKeyID, aead: kr.legacy})
		kr.primary = kr.byID[LegacyKeyID]
	default:
		return nil, configErr(KeysEnv, "not set (nor the legacy %s): no encryption key", LegacyEnv)
	}
	return kr, nil
}

func (kr *Keyring) add(k key) {
	kr.byID[k.id] = k
	kr.ids = append(kr.ids, k.id)
}

// checkID keeps ids printable and free of the format's separators so the v1 header parses
// unambiguously and ids can be shown in logs.
func checkID(id string) error {
	if id == "" {
		return errors.New("empty key id")
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("key id longer than %d characters", maxIDLen)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("key id %q: only letters, digits, '-', '_' and '.' are allowed", id)
		}
	}
	return nil
}

// newAEAD decodes a base64 key. Its errors describe the problem (not base64, wrong length)
// without echoing any of the input.
func newAEAD(b64 string) (cipher.AEAD, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("key is not valid standard base64")
	}
	if len(raw) != KeySize {
		return nil, fmt.Errorf("key is %d bytes after base64 decoding, want %d (AES-256)", len(raw), KeySize)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, errors.New("cannot create AES cipher")
	}
	clear(raw)
	return cipher.NewGCM(block)
}

// ColumnAAD is the binding kvsync uses for a value stored in table.column of the row with id
// rowID; pass it to Encrypt and to Decrypt. The parts are length-prefixed, so no two different
// (table, row, column) triples give the same bytes. The row id must be known before encrypting,
// so writers choose the row's id themselves rather than relying on a database default.
func ColumnAAD(table, rowID, column string) []byte {
	var b strings.Builder
	for _, p := range []string{table, rowID, column} {
		fmt.Fprintf(&b, "%d:%s;", len(p), p)
	}
	return []byte(b.String())
}

// PrimaryID is the id of the key Encrypt uses; `kvsync keys` reports it and rotation compares
// against it.
func (kr *Keyring) PrimaryID() string { return kr.primary.id }

// Encrypt seals plaintext with the primary key in the v1 format, bound to aad (see ColumnAAD).
func (kr *Keyring) Encrypt(plaintext, aad []byte) (string, error) {
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("secret: reading random nonce: %w", err)
	}
	header := version1 + ":" + kr.primary.id + ":"
	sealed := kr.primary.aead.Seal(nonce, nonce, plaintext, fullAAD(header, aad))
	return header + base64.StdEncoding.EncodeToString(sealed), nil
}

// fullAAD puts the header into the authenticated data so that the version and key id cannot be
// altered without detection.
func fullAAD(header string, aad []byte) []byte {
	out := make([]byte, 0, len(header)+len(aad))
	out = append(out, header...)
	return append(out, aad...)
}

// Decrypt opens a v1 or legacy ciphertext. For v1, aad must equal what Encrypt was given. Legacy
// ciphertexts carried no binding, so aad is ignored for them; re-encrypt them (NeedsRotation
// reports true) to gain one. Errors wrap ErrUnknownKey, ErrDecrypt or ErrMalformed.
func (kr *Keyring) Decrypt(ct string, aad []byte) ([]byte, error) {
	ct = strings.TrimSpace(ct)
	if !strings.Contains(ct, ":") {
		return kr.decryptLegacy(ct)
	}
	ver, rest, _ := strings.Cut(ct, ":")
	if ver != version1 {
		return nil, fmt.Errorf("%w: unsupported version %q", ErrMalformed, truncate(ver, 8))
	}
	id, body, ok := strings.Cut(rest, ":")
	if !ok {
		return nil, fmt.Errorf("%w: want v1:<keyid>:<base64>", ErrMalformed)
	}
	k, ok := kr.byID[id]
	if !ok {
		return nil, fmt.Errorf("%w (key id %q)", ErrUnknownKey, truncate(id, maxIDLen))
	}
	raw, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("%w: body is not base64", ErrMalformed)
	}
	if len(raw) < nonceSize+tagSize {
		return nil, fmt.Errorf("%w: too short", ErrMalformed)
	}
	header := version1 + ":" + id + ":"
	pt, err := k.aead.Open(nil, raw[:nonceSize], raw[nonceSize:], fullAAD(header, aad))
	if err != nil {
		return nil, fmt.Errorf("%w (key id %q)", ErrDecrypt, id)
	}
	return pt, nil
}

// decryptLegacy tries KIOTVIET_ENCRYPTION_KEY first, then every configured key: an operator who
// moved the old key into KIOTVIET_ENCRYPTION_KEYS and dropped the legacy variable can still read
// old rows. GCM's tag makes a wrong key fail cleanly, so trying several is safe.
func (kr *Keyring) decryptLegacy(ct string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(ct)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64 and not v1", ErrMalformed)
	}
	if len(raw) < nonceSize+tagSize {
		return nil, fmt.Errorf("%w: too short", ErrMalformed)
	}
	candidates := make([]cipher.AEAD, 0, len(kr.ids)+1)
	if kr.legacy != nil {
		candidates = append(candidates, kr.legacy)
	}
	for _, id := range kr.ids {
		candidates = append(candidates, kr.byID[id].aead)
	}
	for _, aead := range candidates {
		if pt, err := aead.Open(nil, raw[:nonceSize], raw[nonceSize:], nil); err == nil {
			return pt, nil
		}
	}
	return nil, fmt.Errorf("%w (legacy format)", ErrDecrypt)
}

// NeedsRotation reports whether ct should be re-encrypted: it is legacy, or v1 under a key other
// than the primary one. Anything unparseable also reports true, so a rotation pass visits it and
// surfaces the error from Decrypt instead of skipping it silently.
func (kr *Keyring) NeedsRotation(ct string) bool {
	ver, rest, ok := strings.Cut(strings.TrimSpace(ct), ":")
	if !ok || ver != version1 {
		return true
	}
	id, _, ok := strings.Cut(rest, ":")
	return !ok || id != kr.primary.id
}

// Reencrypt upgrades ct to the primary key and aad when NeedsRotation says so, returning the new
// ciphertext and true; otherwise it returns ct unchanged and false. It is the one step a
// `kvsync keys rotate` pass performs per value.
func (kr *Keyring) Reencrypt(ct string, aad []byte) (string, bool, error) {
	if !kr.NeedsRotation(ct) {
		return ct, false, nil
	}
	pt, err := kr.Decrypt(ct, aad)
	if err != nil {
		return "", false, err
	}
	defer clear(pt)
	out, err := kr.Encrypt(pt, aad)
	if err != nil {
		return "", false, err
	}
	return out, true, nil
}

// GenerateKey makes a fresh random key for `kvsync keys generate`: an id to prepend to
// KIOTVIET_ENCRYPTION_KEYS and the base64 key. The id is random too, so two operators generating
// keys at once cannot collide.
func GenerateKey() (id, b64 string, err error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return "", "", fmt.Errorf("secret: reading random key: %w", err)
	}
	defer clear(raw)
	idRaw := make([]byte, 4)
	if _, err := rand.Read(idRaw); err != nil {
		return "", "", fmt.Errorf("secret: reading random key id: %w", err)
	}
	return "k" + hex.EncodeToString(idRaw), base64.StdEncoding.EncodeToString(raw), nil
}

// String describes the keyring by key ids only, so a Keyring logged by accident leaks nothing.
// It has a value receiver so that a copied Keyring prints the same way.
func (kr Keyring) String() string {
	return fmt.Sprintf("Keyring{primary: %s, keys: [%s], legacy: %t}", kr.primary.id, strings.Join(kr.ids, " "), kr.legacy != nil)
}

// GoString keeps %#v from dumping the AES key schedule.
func (kr Keyring) GoString() string { return kr.String() }

// LogValue keeps slog from dumping key material.
func (kr Keyring) LogValue() slog.Value { return slog.StringValue(kr.String()) }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
