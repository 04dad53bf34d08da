// Package httpx holds what every kvsync HTTP function shares: JSON in and out, the one mapping from an
// error to an HTTP status, the 1 MiB body limit, and CORS. Error replies are {success:false, error}, the
// shape the ERP frontend reads.
package httpx

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/kvsync/kvsync/internal/errs"
	"github.com/kvsync/kvsync/internal/wire"
)

// MaxBody is the largest request body accepted; a larger one gets 413.
const MaxBody = 1 << 20

// statuses is the one mapping from an error's code to an HTTP status. A code missing here is a 500.
var statuses = map[errs.Code]int{
	errs.Invalid:          http.StatusBadRequest,
	errs.Unauthorized:     http.StatusUnauthorized,
	errs.Forbidden:        http.StatusForbidden,
	errs.NotFound:         http.StatusNotFound,
	errs.MethodNotAllowed: http.StatusMethodNotAllowed,
	errs.Conflict:         http.StatusConflict,
	errs.State:            http.StatusConflict,
	errs.TooLarge:         http.StatusRequestEntityTooLarge,
	errs.Timeout:          http.StatusRequestTimeout,
	errs.Internal:         http.StatusInternalServerError,
	errs.Upstream:         http.StatusBadGateway,
	errs.Unavailable:      http.StatusServiceUnavailable,
}

// StatusFor is the HTTP status of a code (for a reply that is not an error body, such as a failed
// run's result: errs.Upstream).
func StatusFor(code errs.Code) int {
	if s, ok := statuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Status maps an error to its HTTP status and the message to show: anything that is not an
// *errs.Error, or is coded internal, is 500 with a generic message (the details go to the log only).
func Status(err error) (int, string) {
	return StatusFor(errs.CodeOf(err)), errs.MessageOf(err)
}

// WriteError replies {success:false, error} with the error's status, and logs what is not the caller's
// fault.
//
// A refusal that comes before the body was read (no or bad credentials, not allowed, wrong method, a
// body too slow) closes the connection after the reply: net/http would otherwise read the unread body
// before replying, and a client that announces a body and never sends it would hold the connection.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status, msg := Status(err)
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusMethodNotAllowed, http.StatusRequestTimeout,
		http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable:
		if r.ContentLength != 0 {
			w.Header().Set("Connection", "close")
			// and no more waiting for it after the reply either: net/http reads up to 256 KiB of an unread
			// body when the handler ends; a deadline of now makes that read end at once
			_ = http.NewResponseController(w).SetReadDeadline(time.Now())
		}
	}
	if status >= 500 {
		log.Error("request failed", "path", r.URL.Path, "status", status, "err", err)
	} else {
		log.Info("request refused", "path", r.URL.Path, "status", status, "err", err)
	}
	JSON(w, status, wire.ErrorReply{Success: false, Error: msg})
}

// JSON writes v as a JSON reply.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Decode reads a JSON body into v: 413 over MaxBody, 400 naming the field on a type mismatch, 400 on
// malformed JSON. An empty body decodes as {}.
func Decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errs.E(errs.TooLarge, "request body is larger than %d bytes", MaxBody)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return errs.Wrap(errs.Timeout, err, "the request body did not arrive in time")
		}
		return errs.E(errs.Invalid, "could not read the request body")
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field == "" {
				return errs.E(errs.Invalid, "the request body must be a JSON object")
			}
			return errs.E(errs.Invalid, "%s must be %s", te.Field, inWords(te.Type))
		}
		return errs.E(errs.Invalid, "request body is not valid JSON")
	}
	return nil
}

// Method answers 405 unless the request uses one of the allowed methods.
func Method(w http.ResponseWriter, r *http.Request, log *slog.Logger, allowed ...string) bool {
	if slices.Contains(allowed, r.Method) {
		return true
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	WriteError(w, r, log, errs.E(errs.MethodNotAllowed, "method %s is not allowed", r.Method))
	return false
}

// CORS answers preflight requests and sets the CORS headers for the configured origins ("*" allows any
// origin). The allowed headers are those supabase-js sends with functions.invoke.
func CORS(origins []string, next http.Handler) http.Handler {
	anyOrigin := slices.Contains(origins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		allowed := origin != "" && (anyOrigin || slices.Contains(origins, origin))
		if allowed {
			h := w.Header()
			if anyOrigin {
				h.Set("Access-Control-Allow-Origin", "*")
			} else {
				h.Set("Access-Control-Allow-Origin", origin)
				h.Add("Vary", "Origin")
			}
			h.Set("Access-Control-Allow-Headers", "authorization, x-client-info, apikey, content-type, x-cron-secret")
			h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		}
		if r.Method == http.MethodOptions {
			if !allowed {
				w.WriteHeader(http.StatusForbidden)
				return
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// inWords names what a JSON value of type t must be in words a caller understands, never a Go type
// ("options.pageSize must be a whole number", not "must be a int").
func inWords(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a different kind of value"
}
