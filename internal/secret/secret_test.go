package secret

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// testKey returns a distinct, recognisable 32-byte key in base64.
func testKey(seed byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{seed}, KeySize))
}

func mustParse(t *testing.T, keys, legacy string) *Keyring {
	t.Helper()
	kr, err := ParseKeys(keys, legacy)
	if err != nil {
		t.Fatalf("ParseKeys: %v", err)
	}
	return kr
}

func mustEncrypt(t *testing.T, kr *Keyring, pt string, aad []byte) string {
	t.Helper()
	ct, err := kr.Encrypt([]byte(pt), aad)
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	return ct
}

var rowA = ColumnAAD("kiotviet_credentials", "6f1c1d2e-0000-4000-8000-00000000000a", "encrypted_token")

func TestRoundTrip(t *testing.T) {
	kr := mustParse(t, "k1:"+testKey(1), "")
	for _, pt := range []string{"", "s3cr3t", strings.Repeat("token-", 500)} {
		ct := mustEncrypt(t, kr, pt, rowA)
		if !strings.HasPrefix(ct, "v1:k1:") {
			t.Fatalf("ciphertext %q lacks the v1:k1: header", ct)
		}
		if strings.Contains(ct, pt) && pt != "" {
			t.Fatal("ciphertext contains the plaintext")
		}
		got, err := kr.Decrypt(ct, rowA)
		if err != nil {
			t.Fatalf("Decrypt: %v", err)
		}
		if string(got) != pt {
			t.Fatalf("round trip: got %q, want %q", got, pt)
		}
	}
}

func TestEncryptUsesFreshNonce(t *testing.T) {
	kr := mustParse(t, "k1:"+testKey(1), "")
	if a, b := mustEncrypt(t, kr, "same", rowA), mustEncrypt(t, kr, "same", rowA); a == b {
		t.Fatal("two encryptions of the same plaintext are identical: nonce reused")
	}
}

func TestWrongKeyFails(t *testing.T) {
	ct := mustEncrypt(t, mustParse(t, "k1:"+testKey(1), ""), "s3cr3t", rowA)
	other := mustParse(t, "k1:"+testKey(2), "") // same id, different key
	if _, err := other.Decrypt(ct, rowA); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("decrypt under another key: got %v, want ErrDecrypt", err)
	}
	missing := mustParse(t, "k9:"+testKey(1), "")
	if _, err := missing.Decrypt(ct, rowA); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("decrypt with key id absent: got %v, want ErrUnknownKey", err)
	}
}

func TestWrongBindingFails(t *testing.T) {
	kr := mustParse(t, "k1:"+testKey(1), "")
	ct := mustEncrypt(t, kr, "s3cr3t", rowA)
	for name, aad := range map[string][]byte{
		"other row":    ColumnAAD("kiotviet_credentials", "6f1c1d2e-0000-4000-8000-00000000000b", "encrypted_token"),
		"other column": ColumnAAD("kiotviet_credentials", "6f1c1d2e-0000-4000-8000-00000000000a", "encrypted_client_secret"),
		"no binding":   nil,
	} {
		if _, err := kr.Decrypt(ct, aad); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: got %v, want ErrDecrypt", name, err)
		}
	}
}

func TestColumnAADIsUnambiguous(t *testing.T) {
	if bytes.Equal(ColumnAAD("a", "b:c", "d"), ColumnAAD("a", "b", "c:d")) {
		t.Fatal("different triples produce the same binding")
	}
}

func TestTamperedFails(t *testing.T) {
	// k1 and k2 hold the same key bytes, so only the authenticated header can tell them apart.
	kr := mustParse(t, "k1:"+testKey(1)+",k2:"+testKey(1), "")
	ct := mustEncrypt(t, kr, "s3cr3t", rowA)

	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(ct, "v1:k1:"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw { // every byte: nonce, ciphertext and tag are all covered
		flipped := bytes.Clone(raw)
		flipped[i] ^= 0x01
		if _, err := kr.Decrypt("v1:k1:"+base64.StdEncoding.EncodeToString(flipped), rowA); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("byte %d flipped: got %v, want ErrDecrypt", i, err)
		}
	}
	if _, err := kr.Decrypt("v1:k2:"+strings.TrimPrefix(ct, "v1:k1:"), rowA); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("relabelled key id: got %v, want ErrDecrypt", err)
	}
	for _, bad := range []string{"v2:k1:" + strings.TrimPrefix(ct, "v1:k1:"), "v1:k1", "v1:k1:!!!", "v1:k1:AAAA", "not base64 at all", ""} {
		if _, err := kr.Decrypt(bad, rowA); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decrypt(%q): got %v, want ErrMalformed", bad, err)
		}
	}
}

// legacyEncrypt mirrors the earlier Deno code (_shared/crypto.ts): WebCrypto AES-GCM with a random
// 12-byte IV, output base64(iv ‖ ciphertext ‖ tag), no additional data. It is written against
// crypto/aes directly so the test does not lean on the code under test.
func legacyEncrypt(t *testing.T, b64Key, plaintext string) string {
	t.Helper()
	keyBytes, err := base64.StdEncoding.DecodeString(b64Key)
	if err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(keyBytes)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	iv := make([]byte, 12)
	if _, err := rand.Read(iv); err != nil {
		t.Fatal(err)
	}
	encrypted := gcm.Seal(nil, iv, []byte(plaintext), nil) // ciphertext ‖ 16-byte tag, as WebCrypto returns
	combined := append(append([]byte{}, iv...), encrypted...)
	return base64.StdEncoding.EncodeToString(combined)
}

func TestLegacyCiphertextDecrypts(t *testing.T) {
	old := testKey(7)
	legacyCT := legacyEncrypt(t, old, "kiotviet-access-token")

	cases := map[string]*Keyring{
		"legacy variable only":           mustParse(t, "", old),
		"legacy variable beside new key": mustParse(t, "k1:"+testKey(1), old),
		"old key moved into the ring":    mustParse(t, "k1:"+testKey(1)+",old:"+old, ""),
	}
	for name, kr := range cases {
		got, err := kr.Decrypt(legacyCT, rowA) // a binding is ignored: legacy had none
		if err != nil {
			t.Fatalf("%s: Decrypt: %v", name, err)
		}
		if string(got) != "kiotviet-access-token" {
			t.Fatalf("%s: got %q", name, got)
		}
		if !kr.NeedsRotation(legacyCT) {
			t.Fatalf("%s: legacy ciphertext should need rotation", name)
		}
		up, changed, err := kr.Reencrypt(legacyCT, rowA)
		if err != nil || !changed {
			t.Fatalf("%s: Reencrypt: changed=%v err=%v", name, changed, err)
		}
		if !strings.HasPrefix(up, "v1:"+kr.PrimaryID()+":") || kr.NeedsRotation(up) {
			t.Fatalf("%s: upgraded ciphertext %q is not v1 under the primary key", name, up)
		}
		if _, err := kr.Decrypt(up, ColumnAAD("kiotviet_credentials", "other", "encrypted_token")); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("%s: upgraded ciphertext is not bound to its row: %v", name, err)
		}
	}

	if _, err := mustParse(t, "k1:"+testKey(1), "").Decrypt(legacyCT, nil); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("legacy ciphertext without its key: got %v, want ErrDecrypt", err)
	}
}

func TestLegacyOnlyEncryptsV1(t *testing.T) {
	kr := mustParse(t, "", testKey(7))
	ct := mustEncrypt(t, kr, "x", rowA)
	if !strings.HasPrefix(ct, "v1:"+LegacyKeyID+":") {
		t.Fatalf("got %q, want a v1 ciphertext under %q", ct, LegacyKeyID)
	}
	if kr.NeedsRotation(ct) {
		t.Fatal("ciphertext under the primary key should not need rotation")
	}
}

func TestRotation(t *testing.T) {
	a, b := testKey(0xA), testKey(0xB)
	oldRing := mustParse(t, "A:"+a, "")
	ct := mustEncrypt(t, oldRing, "client-secret", rowA)
	if oldRing.NeedsRotation(ct) {
		t.Fatal("fresh ciphertext under the primary key needs rotation")
	}

	newRing := mustParse(t, "B:"+b+",A:"+a, "")
	if got, err := newRing.Decrypt(ct, rowA); err != nil || string(got) != "client-secret" {
		t.Fatalf("new ring decrypts old ciphertext: %q, %v", got, err)
	}
	if !newRing.NeedsRotation(ct) {
		t.Fatal("ciphertext under A should need rotation once B is primary")
	}
	up, changed, err := newRing.Reencrypt(ct, rowA)
	if err != nil || !changed {
		t.Fatalf("Reencrypt: changed=%v err=%v", changed, err)
	}
	if !strings.HasPrefix(up, "v1:B:") || newRing.NeedsRotation(up) {
		t.Fatalf("re-encrypted ciphertext %q is not under B", up)
	}
	if again, changed, err := newRing.Reencrypt(up, rowA); err != nil || changed || again != up {
		t.Fatalf("second Reencrypt should be a no-op: changed=%v err=%v", changed, err)
	}
	// Once A is retired, the upgraded value still decrypts and the old one does not.
	onlyB := mustParse(t, "B:"+b, "")
	if got, err := onlyB.Decrypt(up, rowA); err != nil || string(got) != "client-secret" {
		t.Fatalf("after retiring A: %q, %v", got, err)
	}
	if _, err := onlyB.Decrypt(ct, rowA); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old ciphertext after retiring A: got %v, want ErrUnknownKey", err)
	}
}

func TestNeedsRotationOnGarbage(t *testing.T) {
	kr := mustParse(t, "k1:"+testKey(1), "")
	for _, s := range []string{"", "v1:k1", "v2:k1:AAAA", "garbage"} {
		if !kr.NeedsRotation(s) {
			t.Errorf("NeedsRotation(%q) = false, want true", s)
		}
	}
}

func TestParseKeysErrors(t *testing.T) {
	good := testKey(1)
	short := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 16))
	// A key that is one character off base64: the error must still not echo it.
	badB64 := good[:len(good)-2] + "*="
	cases := []struct {
		name, keys, legacy string
		wantVar, wantMsg   string
		secrets            []string
	}{
		{"both empty", "", "", KeysEnv, "not set", nil},
		{"bad base64", "k1:" + badB64, "", KeysEnv, "not valid standard base64", []string{badB64}},
		{"wrong length", "k1:" + short, "", KeysEnv, "16 bytes", []string{short}},
		{"duplicate id", "k1:" + good + ",k1:" + testKey(2), "", KeysEnv, "duplicate key id", []string{good, testKey(2)}},
		{"empty entry", "k1:" + good + ",,k2:" + testKey(2), "", KeysEnv, "entry 2 is empty", []string{good}},
		{"missing id", good, "", KeysEnv, "want id:base64key", []string{good}},
		{"empty id", ":" + good, "", KeysEnv, "empty key id", []string{good}},
		{"bad id", "k 1:" + good, "", KeysEnv, "only letters", []string{good}},
		{"reserved id", "legacy:" + good, testKey(2), KeysEnv, "reserved", []string{good, testKey(2)}},
		{"legacy bad base64", "", badB64, LegacyEnv, "not valid standard base64", []string{badB64}},
		{"legacy wrong length", "", short, LegacyEnv, "16 bytes", []string{short}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kr, err := ParseKeys(c.keys, c.legacy)
			if err == nil {
				t.Fatalf("ParseKeys succeeded: %v", kr)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Var != c.wantVar {
				t.Fatalf("error %v is not a *ConfigError for %s", err, c.wantVar)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.wantVar) || !strings.Contains(msg, c.wantMsg) {
				t.Fatalf("error %q should name %s and say %q", msg, c.wantVar, c.wantMsg)
			}
			for _, s := range c.secrets {
				if strings.Contains(msg, s) || strings.Contains(msg, s[:12]) {
					t.Fatalf("error %q contains key material", msg)
				}
			}
		})
	}
}

func TestKeyringNeverPrintsKeys(t *testing.T) {
	k1, old := testKey(0x41), testKey(0x42) // 'A'... and 'B'...: raw bytes would show as AAAA/BBBB
	kr := mustParse(t, "k1:"+k1, old)
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("boot", "keys", kr)
	outputs := []string{
		fmt.Sprint(kr), fmt.Sprintf("%+v", kr), fmt.Sprintf("%#v", kr),
		fmt.Sprint(*kr), fmt.Sprintf("%+v", *kr), fmt.Sprintf("%#v", *kr),
		logged.String(),
	}
	for _, out := range outputs {
		if !strings.Contains(out, "k1") {
			t.Errorf("output %q should name the key id", out)
		}
		for _, leak := range []string{k1, old, "AAAAAAAA", "BBBBBBBB", "65 65 65", "0x41"} {
			if strings.Contains(out, leak) {
				t.Errorf("output %q leaks key material (%q)", out, leak)
			}
		}
	}
}

func TestGenerateKey(t *testing.T) {
	id1, k1, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	id2, k2, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if id1 == id2 || k1 == k2 {
		t.Fatal("two generated keys are equal")
	}
	kr := mustParse(t, id1+":"+k1+","+id2+":"+k2, "")
	if kr.PrimaryID() != id1 {
		t.Fatalf("primary = %q, want the first entry %q", kr.PrimaryID(), id1)
	}
	ct := mustEncrypt(t, kr, "x", nil)
	if got, err := kr.Decrypt(ct, nil); err != nil || string(got) != "x" {
		t.Fatalf("round trip with generated key: %q, %v", got, err)
	}
}
