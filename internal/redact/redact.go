// Package redact removes secrets from text on its way to a log line, an error reply or a stored error
// message. It is the one place that knows what a secret looks like inside a URL or an error:
//
//   - URLs: userinfo is dropped; path segments and query values that look like tokens (long runs of
//     letters and digits, as in Slack, Discord and Telegram webhook URLs) and the values of parameters
//     named like a secret (token, key, secret, signature, password, code, auth…) become REDACTED;
//   - a *url.Error (what net/http returns for a failed request) prints its URL, so errors are redacted
//     as text: every URL in the text is treated as above;
//   - "Bearer …" credentials, JWTs and Supabase sb_secret_/sb_publishable_ keys anywhere in the text;
//   - exact secret values a process knows (its cron secret, keys), via a Redactor.
package redact

import (
	"context"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
)

// Mark replaces what was removed.
const Mark = "REDACTED"

var (
	urlRE    = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s"'<>\x60]+`)
	bearerRE = regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]+`)
	jwtRE    = regexp.MustCompile(`eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*`)
	sbKeyRE  = regexp.MustCompile(`sb_(secret|publishable)_[A-Za-z0-9_\-]+`)
	// parameter names whose values are secrets whatever they look like
	secretParamRE = regexp.MustCompile(`(?i)(token|key|secret|sig|signature|password|passwd|pwd|auth|code|credential|session)`)
)

// tokenish reports whether s, or a part of it between colons (Telegram's bot<id>:<token>), looks like a
// token rather than a word, a number or a date: at least 16 characters of letters, digits and -_.~+/=%,
// with both letters and digits.
func tokenish(s string) bool {
	for _, part := range strings.Split(s, ":") {
		if tokenPart(part) {
			return true
		}
	}
	return false
}

func tokenPart(s string) bool {
	if len(s) < 16 {
		return false
	}
	letters, digits := false, false
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			letters = true
		case r >= '0' && r <= '9':
			digits = true
		case strings.ContainsRune("-_.~+/=%", r):
		default:
			return false
		}
	}
	return letters && digits
}

// URL returns raw fit for a log: userinfo dropped, token-like path segments and secret query values
// replaced by REDACTED. Text that does not parse as a URL is redacted as a whole.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" && u.Opaque != "" {
		return Mark
	}
	if u.User != nil {
		u.User = url.User(Mark)
	}
	if u.Path != "" {
		segs := strings.Split(u.Path, "/")
		for i, s := range segs {
			if tokenish(s) || sbKeyRE.MatchString(s) || jwtRE.MatchString(s) {
				segs[i] = Mark
			}
		}
		u.Path, u.RawPath = strings.Join(segs, "/"), ""
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = Mark
		} else {
			for k, vs := range q {
				for i, v := range vs {
					if secretParamRE.MatchString(k) || tokenish(v) {
						vs[i] = Mark
					}
				}
			}
			u.RawQuery = q.Encode()
		}
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// String redacts every URL, bearer credential, JWT and Supabase key in s.
func String(s string) string {
	s = urlRE.ReplaceAllStringFunc(s, func(m string) string {
		// a URL quoted in an error ends before the quote; trailing punctuation is not part of it
		trim := strings.TrimRight(m, ".,;:)]}")
		return URL(trim) + m[len(trim):]
	})
	s = bearerRE.ReplaceAllString(s, "$1 "+Mark)
	s = jwtRE.ReplaceAllString(s, Mark)
	s = sbKeyRE.ReplaceAllString(s, Mark)
	return s
}

// Error wraps err so that its text is redacted; errors.Is and errors.As still see the original.
func Error(err error) error {
	if err == nil {
		return nil
	}
	return &redacted{err: err, msg: String(err.Error())}
}

type redacted struct {
	err error
	msg string
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

// Redactor also removes exact secret values (a process's cron secret, service key, JWT secret, keys)
// wherever they appear, before String's rules.
type Redactor struct {
	secrets []string
}

// New returns a Redactor for these secrets; empty values and values shorter than 8 characters (which
// would blank out ordinary words) are ignored.
func New(secrets ...string) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		if len(s) >= 8 {
			r.secrets = append(r.secrets, s)
		}
	}
	return r
}

// String removes the Redactor's secrets from s, then applies String.
func (r *Redactor) String(s string) string {
	if r != nil {
		for _, sec := range r.secrets {
			s = strings.ReplaceAll(s, sec, Mark)
		}
	}
	return String(s)
}

// Handler wraps next so that every message and attribute of every record is redacted: strings, errors
// and anything printed with %v (groups included). It is the last line of defence; errors are also
// redacted where they are made.
func (r *Redactor) Handler(next slog.Handler) slog.Handler { return &handler{next: next, r: r} }

type handler struct {
	next slog.Handler
	r    *Redactor
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i] = h.attr(a)
	}
	return &handler{next: h.next.WithAttrs(clean), r: h.r}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), r: h.r}
}

func (h *handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.r.String(v.String()))
	case slog.KindGroup:
		g := v.Group()
		clean := make([]any, len(g))
		for i, ga := range g {
			clean[i] = h.attr(ga)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		if e, ok := v.Any().(error); ok {
			return slog.String(a.Key, h.r.String(e.Error()))
		}
		return slog.String(a.Key, h.r.String(v.String()))
	}
	return slog.Attr{Key: a.Key, Value: v}
}
