// Package errs is kvsync's one error vocabulary: an Error carries a Code from a small set, a message
// safe to show whoever caused it, and the cause for the logs. The store, auth, the engine and the HTTP
// handlers return it; httpx maps a Code to an HTTP status in one table, and the CLI switches on codes
// to say what to do. Errors that are not an *Error are internal: logged in full, shown as "internal
// error".
package errs

import (
	"errors"
	"fmt"
)

// Code says what kind of failure an error is, so that callers can answer it without reading its text.
type Code string

// The codes. Keep this set small: a new code needs a reason a caller would act differently on it.
const (
	Invalid          Code = "invalid"            // the input breaks a rule; the message names the field or the rule
	NotFound         Code = "not_found"          // what was asked for (a credential, a run) does not exist
	Conflict         Code = "conflict"           // clashes with what is going on: the credential is already syncing
	State            Code = "state"              // the row is not in a state that allows this: an inactive credential, a run no longer running
	Unauthorized     Code = "unauthorized"       // no credential, or a wrong or expired one
	Forbidden        Code = "forbidden"          // a known caller that may not do this
	MethodNotAllowed Code = "method_not_allowed" // an HTTP method the route does not serve
	TooLarge         Code = "too_large"          // a request body over the limit
	Timeout          Code = "timeout"            // a request body that did not arrive in time
	Unavailable      Code = "unavailable"        // cannot be done right now (shutting down, keys unreachable): retry later
	Upstream         Code = "upstream"           // KiotViet failed or could not be reached
	Internal         Code = "internal"           // anything else: a bug or an outage; never shown in detail
)

// Codes is every code, for tests that check each is handled (httpx maps each to a status).
var Codes = []Code{Invalid, NotFound, Conflict, State, Unauthorized, Forbidden, MethodNotAllowed, TooLarge,
	Timeout, Unavailable, Upstream, Internal}

// Error is a failure with a code. Message is shown to the caller (an HTTP reply, a CLI line) and so
// never holds a token, key or secret; Err, the cause, goes to logs only.
type Error struct {
	Code    Code
	Message string
	Op      string // where it happened, for logs: an SQL function, "auth", "sync"

	// From the database, when it came from one.
	SQLState   string
	Constraint string

	Err error
}

// Error is the log line: where, the message and the cause.
func (e *Error) Error() string {
	s := e.Message
	if e.Op != "" {
		s = e.Op + ": " + s
	}
	if e.Err != nil && e.Err.Error() != e.Message {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap exposes the cause to errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// E makes an *Error with a code and a formatted message.
func E(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap makes an *Error with a code and a message around a cause.
func Wrap(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// CodeOf is err's code: that of the first *Error in its chain, Internal when there is none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) && e.Code != "" {
		return e.Code
	}
	return Internal
}

// MessageOf is what may be shown of err: the first *Error's message, or "internal error" for an
// internal one (whose details are for the logs).
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != Internal && e.Code != "" {
		return e.Message
	}
	return "internal error"
}
