package kiotviet

import (
	"encoding/json"
	"testing"
)

// unquote's fast path must read every JSON string exactly as encoding/json does, and hand every string
// it cannot take as it is (escapes, control characters, invalid UTF-8) to encoding/json.
func TestUnquoteReadsAsEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`""`, `"SP000123"`, `"Áo thun nam cổ tròn"`, `"2026-12-02T10:15:30.123"`, `"a\"b"`, `"tab\there"`,
		`"\u00e1o"`, `"line\nbreak"`, `"slash\/"`, "\"bad \xff utf8\"", "\"ctl \x01\"", `"emoji 🛒"`,
	} {
		var want string
		wantErr := json.Unmarshal([]byte(in), &want)
		got, err := unquote([]byte(in))
		if wantErr != nil {
			isErr(t, err, in)
			continue
		}
		noErr(t, err, in)
		eq(t, want, got, in)
		if s, ok := plainString([]byte(in)); ok {
			eq(t, want, s, in, "taken as it is")
		}
	}
	for _, in := range []string{`"a\"b"`, `"\u00e1o"`, "\"bad \xff utf8\"", "\"ctl \x01\"", `x`, `"open`} {
		_, ok := plainString([]byte(in))
		truth(t, !ok, in, "needs encoding/json")
	}
}

// The flex types read numbers, flags and dates sent as strings through the fast path too.
func TestFlexLeavesFromStrings(t *testing.T) {
	var v struct {
		N flexInt    `json:"n"`
		F flexFloat  `json:"f"`
		B flexBool   `json:"b"`
		S flexString `json:"s"`
		E flexString `json:"e"`
	}
	noErr(t, json.Unmarshal([]byte(`{"n":" 42 ","f":"1.5","b":"true","s":"Cà phê","e":"a\u0041"}`), &v))
	eq(t, int64(42), v.N.V)
	eq(t, 1.5, v.F.V)
	truth(t, v.B.V, "b")
	eq(t, "Cà phê", v.S.V)
	eq(t, "aA", v.E.V)
}
