package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kvsync/kvsync/internal/errs"
	"github.com/kvsync/kvsync/internal/redact"
)

// Helpers the admin subcommands share: flag sets that print a usage text, terminal detection, tables and
// human-readable durations.

// newFlags is a flag set that reports errors and --help on stderr, with usage as its first lines.
func newFlags(e env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, strings.TrimSpace(usage))
		fmt.Fprintln(e.stderr)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and refuses stray positional arguments (a flag written after one is ignored
// by package flag, which would silently drop what the user asked for).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("%s: unexpected argument %q (flags go before nothing else: see --help)", fs.Name(), fs.Arg(0))
	}
	return nil
}

// takeSubcommand splits the subcommand off a command group's arguments (kvsync schedule list …). With
// no argument it prints the group's usage and returns an error naming the subcommands; with -h,
// --help or help it prints the usage and returns ok false and no error.
func takeSubcommand(e env, group, usage string, subs ...string) (sub string, rest env, ok bool, err error) {
	if len(e.args) == 0 || e.args[0] == "-h" || e.args[0] == "--help" || e.args[0] == "help" {
		fmt.Fprintln(e.stderr, strings.TrimSpace(usage))
		if len(e.args) == 0 {
			return "", e, false, fmt.Errorf("%s: say %s", group, orList(subs))
		}
		return "", e, false, nil
	}
	sub, e.args = e.args[0], e.args[1:]
	return sub, e, true, nil
}

// unknownSubcommand is the error for a subcommand that the group does not have.
func unknownSubcommand(group, sub string, subs ...string) error {
	return fmt.Errorf("%s: unknown subcommand %q: use %s", group, sub, orList(subs))
}

// orList writes "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// queryTimeout bounds the short database calls of the admin subcommands.
const queryTimeout = 30 * time.Second

// connect builds the app (newApp) and a context for the subcommand's database calls that ends within
// queryTimeout; done releases both.
func connect(ctx context.Context, e env, needKeys bool) (a *app, qctx context.Context, done func(), err error) {
	a, err = newApp(ctx, e, needKeys)
	if err != nil {
		return nil, nil, nil, err
	}
	qctx, cancel := context.WithTimeout(ctx, queryTimeout)
	return a, qctx, func() { cancel(); a.close() }, nil
}

// isTerminal tells whether v is an *os.File open on a character device other than /dev/null (a
// terminal, in practice), without a dependency: the live progress line and reading the secret depend on it.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok || f == nil {
		return false
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(st, null)
}

// newTable writes aligned columns; call Flush when done.
func newTable(w io.Writer, header ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	return tw
}

func row(tw *tabwriter.Writer, cells ...any) {
	parts := make([]string, len(cells))
	for i, c := range cells {
		parts[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(tw, strings.Join(parts, "\t"))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// human renders a duration the way an operator reads it: 45s, 12m, 3h12m, 2d4h.
func human(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		h := int(d.Hours())
		m := int(d.Minutes()) - h*60
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%02dm", h, m)
	default:
		days := int(d.Hours()) / 24
		h := int(d.Hours()) - days*24
		if h == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd%dh", days, h)
	}
}

// dueGrace is how late a run may be and still count as merely due: the cron ticks every five minutes.
const dueGrace = 5 * time.Minute

// nextRunIn renders the time until a schedule's next run: "in 3h12m", "due" or "overdue 25m".
func nextRunIn(until time.Duration) string {
	switch {
	case until > 0:
		return "in " + human(until)
	case -until <= dueGrace:
		return "due"
	default:
		return "overdue " + human(until)
	}
}

// ago renders a past time relative to now: "12m ago"; "-" for none.
func ago(t *time.Time, now time.Time) string {
	if t == nil {
		return "-"
	}
	return human(now.Sub(*t)) + " ago"
}

func deref(s *string, empty string) string {
	if s == nil || *s == "" {
		return empty
	}
	return *s
}

// oneLine shortens an error message for a table cell.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len([]rune(s)) > n {
		return string([]rune(s)[:n-1]) + "…"
	}
	return s
}

// thousands writes n with a thousands separator: 12,345.
func thousands[T int | int64](n T) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// dbError words a failure of a database call for the CLI: the rule the database named, without the
// internal function it came from or SQL codes; a database that did not answer is said so, with what to
// run. The original error stays wrapped (errors.Is / As).
func dbError(cmd string, err error) error {
	var se *errs.Error
	if !errors.As(err, &se) {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	if se.SQLState == "" && se.Code == errs.Internal {
		return &worded{fmt.Sprintf("%s: the database did not answer (%s): check DATABASE_URL and run 'kvsync doctor'", cmd,
			oneLine(redact.String(se.Message), 200)), err}
	}
	if se.Code == errs.Internal {
		return &worded{fmt.Sprintf("%s: the database refused it: %s (is every migration applied? 'kvsync doctor' checks)", cmd, se.Message), err}
	}
	return &worded{fmt.Sprintf("%s: %s", cmd, se.Message), err}
}

type worded struct {
	msg string
	err error
}

func (w *worded) Error() string { return w.msg }
func (w *worded) Unwrap() error { return w.err }
