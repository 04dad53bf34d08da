package schedulesync

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kvsync/kvsync/internal/httpx"
)

// Any dispatch body decodes to a limit in range or a 4xx naming the problem in words.
func FuzzDecodeDispatch(f *testing.F) {
	for _, s := range []string{``, `{}`, `[]`, `{"limit":5}`, `{"limit":0}`, `{"limit":1001}`, `{"limit":2.5}`,
		`{"limit":"5"}`, `{"wait":true}`, `{"wait":"yes"}`, `{"limit":1e99}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		w, r := httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		_, limit, err := decodeDispatch(w, r)
		if msg := httpx.CheckDecodeError(err); msg != "" {
			t.Fatalf("body %q: %s", body, msg)
		}
		if err == nil && (limit < 0 || limit > 1000) {
			t.Fatalf("accepted limit %d", limit)
		}
	})
}
