package kiotvietsync

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kvsync/kvsync/internal/auth"
	"github.com/kvsync/kvsync/internal/httpx"
	"github.com/kvsync/kvsync/internal/kiotviet"
)

func bodyRequest(body string) (*httptest.ResponseRecorder, *http.Request) {
	return httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
}

// Any body decodes to a valid request or a 4xx naming the problem in words; a decoded request is one
// the engine accepts as to its fields.
func FuzzDecodeSync(f *testing.F) {
	for _, s := range []string{``, `{}`, `[]`, `null`, `"x"`,
		`{"credentialId":"8b1d2c9e-7d51-4d3e-9d8e-1f2a3b4c5d6e","syncType":"products","options":{"pageSize":100}}`,
		`{"credentialId":"8b1d2c9e-7d51-4d3e-9d8e-1f2a3b4c5d6e","syncType":"all","options":{"pageSize":1}}`,
		`{"credentialId":"8b1d2c9e-7d51-4d3e-9d8e-1f2a3b4c5d6e","syncType":"all","options":{"pageSize":50.5}}`,
		`{"credentialId":"8b1d2c9e-7d51-4d3e-9d8e-1f2a3b4c5d6e","syncType":"all","options":{"pageSize":"100"}}`,
		`{"credentialId":5,"syncType":["a"],"options":7}`,
		`{"credentialId":"8b1d2c9e-7d51-4d3e-9d8e-1f2a3b4c5d6e","syncType":"inventory","options":{"dateFrom":"2026-01-31","full":true}}`,
		`{"credentialId":"8b1d2c9e-7d51-4d3e-9d8e-1f2a3b4c5d6e","syncType":"inventory","runId":"x"}`,
		`{"options":{"pageSize":1e40}}`} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, body string, service bool) {
		caller := auth.Caller{Kind: auth.User, UserID: "u"}
		if service {
			caller = auth.Caller{Kind: auth.CronSecret}
		}
		w, r := bodyRequest(body)
		call, err := decodeSync(w, r, caller)
		if msg := httpx.CheckDecodeError(err); msg != "" {
			t.Fatalf("body %q: %s", body, msg)
		}
		if err != nil {
			return
		}
		req := call.req
		if !uuidRE.MatchString(req.CredentialID) {
			t.Fatalf("accepted credentialId %q", req.CredentialID)
		}
		if !req.SyncType.Valid() {
			t.Fatalf("accepted syncType %q", req.SyncType)
		}
		if !kiotviet.PageSizeOK(req.PageSize) {
			t.Fatalf("accepted pageSize %d", req.PageSize)
		}
		if call.claim != nil && !service {
			t.Fatalf("a user's request carries a runId")
		}
	})
}

func FuzzDecodeSaveToken(f *testing.F) {
	for _, s := range []string{``, `{}`, `[]`, `{"retailerName":"shop","clientId":"id","clientSecret":"s"}`,
		`{"retailerName":" ","clientId":"id","clientSecret":"s"}`, `{"retailerName":1}`, `{"clientSecret":null}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		w, r := bodyRequest(body)
		c, err := decodeSaveToken(w, r)
		if msg := httpx.CheckDecodeError(err); msg != "" {
			t.Fatalf("body %q: %s", body, msg)
		}
		if err == nil && (strings.TrimSpace(c.Retailer) == "" || strings.TrimSpace(c.ClientID) == "" || strings.TrimSpace(c.ClientSecret) == "") {
			t.Fatalf("accepted an empty field: %+v", c)
		}
	})
}
