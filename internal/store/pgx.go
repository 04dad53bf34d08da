package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/kvsync/kvsync/internal/errs"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PG calls the SQL functions over a pgx pool: the default backend, and the one tests use. Behind
// Supabase's transaction pooler, add default_query_exec_mode=simple_protocol to the URL.
type PG struct {
	Pool *pgxpool.Pool
}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Call builds `select … from public.fn(p_a => $1, …)`, so arguments bind by name as they do over
// PostgREST, and returns the result as JSON.
func (p PG) Call(ctx context.Context, fn string, args []Arg, set bool) (json.RawMessage, error) {
	if !identifier.MatchString(fn) {
		return nil, &errs.Error{Op: fn, Code: errs.Invalid, Message: "not a function name"}
	}
	names := make([]string, len(args))
	values := make([]any, len(args))
	for i, a := range args {
		if !identifier.MatchString(a.Name) {
			return nil, &errs.Error{Op: fn, Code: errs.Invalid, Message: "not an argument name: " + a.Name}
		}
		names[i] = fmt.Sprintf("%s => $%d", a.Name, i+1)
		values[i] = a.Value
		if raw, ok := a.Value.(json.RawMessage); ok {
			values[i] = string(raw) // jsonb parameters take JSON text
		}
	}
	call := fmt.Sprintf("public.%s(%s)", fn, strings.Join(names, ", "))
	q := "select coalesce(to_jsonb(" + call + "), 'null'::jsonb)::text"
	if set {
		q = "select coalesce(jsonb_agg(to_jsonb(r)), '[]'::jsonb)::text from " + call + " r"
	}
	var out string
	if err := p.Pool.QueryRow(ctx, q, values...).Scan(&out); err != nil {
		return nil, pgError(fn, err)
	}
	return json.RawMessage(out), nil
}

func pgError(fn string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return sqlError(fn, pe.Code, pe.ConstraintName, pe.Message, err)
	}
	return &errs.Error{Op: fn, Code: errs.Internal, Message: err.Error(), Err: err}
}
