package kiotviet

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors callers test with errors.Is to decide what to do next.
var (
	// ErrUnauthorized means KiotViet refused the credentials, the token (even
	// after one fresh token) or the Retailer name. Retrying will not help;
	// the credentials need attention.
	ErrUnauthorized = errors.New("kiotviet: unauthorized")
	// ErrRateLimited means KiotViet answered 429 and the client gave up,
	// either after MaxAttempts or because Retry-After was too long.
	ErrRateLimited = errors.New("kiotviet: rate limited")
	// ErrRunawayPaging means a list endpoint kept returning pages past any
	// sensible end (ignored currentItem, wrong total); the pager stopped.
	ErrRunawayPaging = errors.New("kiotviet: paging did not terminate")
)

// APIError is a non-success reply from KiotViet. It names the endpoint (path
// only, never a token or secret), the HTTP status and KiotViet's errorCode
// and message when the body carried them.
type APIError struct {
	Method   string
	Endpoint string
	Status   int
	Code     string // responseStatus.errorCode, or the OAuth "error" field
	Message  string // responseStatus.message, message or error_description

	authFailure bool // the token endpoint refused the credentials
}

// Error formats the reply for logs; it never includes request headers.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kiotviet: %s %s: status %d", e.Method, e.Endpoint, e.Status)
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrUnauthorized) and errors.Is(err,
// ErrRateLimited) work on API errors.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.unauthorized()
	case ErrRateLimited:
		return e.Status == 429
	}
	return false
}

// CredentialsRejected reports whether err carries KiotViet's token endpoint refusing the client id or
// secret (any 4xx but 408 and 429: the shop owner regenerated the secret, API access was removed). That
// failure is permanent: retrying will not fix it, saving the connection again will. A timeout, a 5xx, a
// rate limit or a 401 on a data endpoint is not this.
func CredentialsRejected(err error) bool {
	var api *APIError
	return errors.As(err, &api) && api.authFailure
}

// unauthorized reports a reply that a fresh token might fix.
func (e *APIError) unauthorized() bool {
	return e.authFailure || e.Status == 401 || (e.Status >= 400 && e.Status < 500 && strings.EqualFold(e.Code, "TokenException"))
}

// temporary reports a reply worth retrying after a pause.
func (e *APIError) temporary() bool {
	return e.Status == 429 || e.Status == 408 || e.Status >= 500
}

// RateLimitError is returned when KiotViet asks the client to wait longer
// than Config.MaxRetryAfter. RetryAfter says when to come back.
type RateLimitError struct {
	*APIError
	RetryAfter time.Duration
}

// Error adds the requested wait to the API error.
func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%s (retry after %s)", e.APIError.Error(), e.RetryAfter)
}

// Unwrap exposes the APIError (and through it ErrRateLimited).
func (e *RateLimitError) Unwrap() error { return e.APIError }

// errorBody covers the error shapes KiotViet and its identity server send:
// ServiceStack's responseStatus, a bare message and OAuth's error fields.
type errorBody struct {
	ResponseStatus *struct {
		ErrorCode string          `json:"errorCode"`
		Message   string          `json:"message"`
		Errors    json.RawMessage `json:"errors"`
	} `json:"responseStatus"`
	Message          string `json:"message"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// maxErrorMessage bounds how much of a server message goes into an error.
const maxErrorMessage = 300

// newAPIError builds an APIError from a reply body, tolerating any body.
func newAPIError(method, endpoint string, status int, body []byte) *APIError {
	e := &APIError{Method: method, Endpoint: endpoint, Status: status}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil {
		switch {
		case eb.ResponseStatus != nil:
			e.Code, e.Message = eb.ResponseStatus.ErrorCode, eb.ResponseStatus.Message
		case eb.Error != "":
			e.Code, e.Message = eb.Error, eb.ErrorDescription
		default:
			e.Message = eb.Message
		}
	}
	e.Code = clip(e.Code, 80)
	e.Message = clip(e.Message, maxErrorMessage)
	return e
}

// clip shortens s to at most n bytes on a rune boundary and drops control
// characters so a hostile body cannot forge log lines.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
