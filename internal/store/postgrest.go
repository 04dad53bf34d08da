package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/kvsync/kvsync/internal/errs"

	postgrest "github.com/supabase-community/postgrest-go"
)

// DefaultPostgRESTTimeout bounds one call when NewPostgREST gets no *http.Client (or one without a
// Timeout) and the context has no earlier deadline: postgrest-go itself never times out.
const DefaultPostgRESTTimeout = 60 * time.Second

// PostgREST calls the SQL functions through Supabase's REST gateway (POST {url}/rest/v1/rpc/{fn}) with
// a secret (or service-role) key: the backend for deployments that have only SUPABASE_URL and
// SUPABASE_SECRET_KEY (or the legacy SUPABASE_SERVICE_ROLE_KEY).
//
// The request goes through postgrest-go's own transport, so the wire format is exactly what
// postgrest-go sends (apikey, Authorization: Bearer, Content-Type/Accept application/json,
// Content-Profile/Accept-Profile public, X-Client-Info), but not through its Rpc method: Rpc returns
// an error body as if it were the result and keeps a sticky ClientError. Here every call is a fresh
// request with its own context, the HTTP status is checked, and PostgREST's error body becomes an
// *Error just as pgx's does. No state is shared between calls except the read-only headers, so a
// failed call never affects the next one and a PostgREST is safe for concurrent use.
type PostgREST struct {
	rest    *postgrest.Client // postgrest.NewClient(url+"/rest/v1", "public", key headers), what supabase.NewClient builds
	base    *url.URL          // {url}/rest/v1
	key     string            // only to redact it from error text
	timeout time.Duration
}

// NewPostgREST returns a Caller for supabaseURL (https://<ref>.supabase.co, or http://127.0.0.1:54321
// locally) authenticated with the service-role key. httpClient may be nil; its Transport carries the
// requests and its Timeout (DefaultPostgRESTTimeout when zero) bounds each call. Redirects are never
// followed, so the key is never sent to another host; a 3xx is an error.
func NewPostgREST(supabaseURL, serviceKey string, httpClient *http.Client) (*PostgREST, error) {
	supabaseURL = strings.TrimRight(strings.TrimSpace(supabaseURL), "/")
	serviceKey = strings.TrimSpace(serviceKey)
	if supabaseURL == "" || serviceKey == "" {
		return nil, errors.New("store: PostgREST needs SUPABASE_URL and SUPABASE_SECRET_KEY (or SUPABASE_SERVICE_ROLE_KEY)")
	}
	u, err := url.Parse(supabaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("store: SUPABASE_URL must be an http(s) URL such as https://<project-ref>.supabase.co")
	}
	// The same client supabase.NewClient makes for its REST side (supabase-go keeps it private).
	rest := postgrest.NewClient(supabaseURL+"/rest/v1", "public", map[string]string{
		"apikey":        serviceKey,
		"Authorization": "Bearer " + serviceKey,
	})
	if rest.ClientError != nil {
		return nil, errors.New("store: SUPABASE_URL is not a valid URL")
	}
	timeout := DefaultPostgRESTTimeout
	if httpClient != nil {
		rest.Transport.Parent = httpClient.Transport // nil: http.DefaultTransport
		if httpClient.Timeout > 0 {
			timeout = httpClient.Timeout
		}
	}
	base := u.JoinPath("rest", "v1")
	return &PostgREST{rest: rest, base: base, key: serviceKey, timeout: timeout}, nil
}

// Call posts the named arguments as a JSON object to /rest/v1/rpc/{fn} and returns PostgREST's body:
// the scalar's JSON, or for set true the rows as an array of objects ([] when there are none).
func (p *PostgREST) Call(ctx context.Context, fn string, args []Arg, set bool) (json.RawMessage, error) {
	if !identifier.MatchString(fn) {
		return nil, &errs.Error{Op: fn, Code: errs.Invalid, Message: "not a function name"}
	}
	body, err := rpcBody(fn, args)
	if err != nil {
		return nil, err
	}
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base.JoinPath("rpc", fn).String(), bytes.NewReader(body))
	if err != nil {
		return nil, p.fail(fn, "build request", err)
	}
	// postgrest-go's transport stamps its headers on the request and sends it (no redirects, no jar).
	resp, err := p.rest.Transport.RoundTrip(req)
	if err != nil {
		return nil, p.fail(fn, "request", ctxErr(ctx, err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, p.fail(fn, "read response", ctxErr(ctx, err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, p.httpError(fn, resp.StatusCode, raw)
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || (set && bytes.Equal(raw, []byte("null"))) {
		if set {
			return json.RawMessage(`[]`), nil
		}
		return json.RawMessage(`null`), nil // a void function: 204 No Content
	}
	if !json.Valid(raw) {
		return nil, &errs.Error{Op: fn, Code: errs.Internal,
			Message: fmt.Sprintf("PostgREST answered HTTP %d with a body that is not JSON", resp.StatusCode)}
	}
	return json.RawMessage(raw), nil
}

// rpcBody encodes the arguments as one JSON object, in order: json.RawMessage embedded as JSON (empty
// as null), nil as null, time.Time as RFC 3339, slices as arrays.
func rpcBody(fn string, args []Arg) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	seen := make(map[string]bool, len(args))
	b.WriteByte('{')
	for i, a := range args {
		if !identifier.MatchString(a.Name) {
			return nil, &errs.Error{Op: fn, Code: errs.Invalid, Message: "not an argument name: " + a.Name}
		}
		if seen[a.Name] {
			return nil, &errs.Error{Op: fn, Code: errs.Invalid, Message: "argument given twice: " + a.Name}
		}
		seen[a.Name] = true
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + a.Name + `":`)
		v := a.Value
		if raw, ok := v.(json.RawMessage); ok && len(bytes.TrimSpace(raw)) == 0 {
			v = nil
		}
		if err := enc.Encode(v); err != nil {
			return nil, &errs.Error{Op: fn, Code: errs.Invalid, Message: "encode argument " + a.Name + ": " + err.Error(), Err: err}
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// postgrestError is PostgREST's error body; gateways (Kong) send only message, some only msg or error.
type postgrestError struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Details json.RawMessage `json:"details"`
	Hint    json.RawMessage `json:"hint"`
	Msg     string          `json:"msg"`
	Error   string          `json:"error"`
}

var (
	sqlState         = regexp.MustCompile(`^[0-9A-Z]{5}$`)
	constraintInText = regexp.MustCompile(`constraint "([^"]+)"`)
)

// httpError maps a non-2xx answer. A PostgreSQL error (a five-character SQLSTATE in code) becomes the
// same *errs.Error pgx gives: the code from sqlError, the database's message, and the constraint when
// the message names one. Anything else (PGRST… codes such as PGRST301 for a bad JWT or PGRST202 for an
// unknown function, a gateway's JSON, an HTML page) is errs.Internal with the HTTP status.
func (p *PostgREST) httpError(fn string, status int, raw []byte) error {
	var pe postgrestError
	if err := json.Unmarshal(raw, &pe); err != nil {
		return &errs.Error{Op: fn, Code: errs.Internal,
			Message: fmt.Sprintf("PostgREST answered HTTP %d %s with a body that is not JSON", status, http.StatusText(status))}
	}
	msg := firstNonEmpty(pe.Message, pe.Msg, pe.Error, http.StatusText(status))
	if sqlState.MatchString(pe.Code) {
		constraint := ""
		if m := constraintInText.FindStringSubmatch(pe.Message); m != nil {
			constraint = m[1]
		}
		return sqlError(fn, pe.Code, constraint, p.redact(msg), nil)
	}
	text := fmt.Sprintf("PostgREST answered HTTP %d", status)
	if pe.Code != "" {
		text += " (" + pe.Code + ")"
	}
	return &errs.Error{Op: fn, Code: errs.Internal, Message: p.redact(text + ": " + msg)}
}

// fail wraps a transport failure; a cancelled or expired context stays reachable with errors.Is.
func (p *PostgREST) fail(fn, what string, err error) error {
	e := &errs.Error{Op: fn, Code: errs.Internal, Message: p.redact(what + ": " + err.Error()), Err: err}
	if p.key != "" && strings.Contains(err.Error(), p.key) {
		e.Err = errors.New(e.Message)
	}
	return e
}

func (p *PostgREST) redact(s string) string {
	if p.key == "" {
		return s
	}
	return strings.ReplaceAll(s, p.key, "[redacted]")
}

// ctxErr prefers the context's own error, so callers can tell a cancel or deadline from a network error.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
