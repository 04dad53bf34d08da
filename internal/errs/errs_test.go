package errs_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/kvsync/kvsync/internal/errs"
)

func TestCodeAndMessageThroughWrapping(t *testing.T) {
	t.Parallel()
	cause := errors.New("pq: duplicate key")
	err := fmt.Errorf("start run: %w", &errs.Error{Code: errs.Conflict, Op: "kiotviet_start_run", Message: "already syncing", Err: cause})
	assert.Equal(t, errs.Conflict, errs.CodeOf(err))
	assert.Equal(t, "already syncing", errs.MessageOf(err))
	assert.ErrorIs(t, err, cause)
	assert.Equal(t, "start run: kiotviet_start_run: already syncing: pq: duplicate key", err.Error())
}

func TestInternalDetailsAreNotShown(t *testing.T) {
	t.Parallel()
	plain := errors.New("dial tcp 10.0.0.1:5432: connection refused")
	assert.Equal(t, errs.Internal, errs.CodeOf(plain))
	assert.Equal(t, "internal error", errs.MessageOf(plain))
	wrapped := errs.Wrap(errs.Internal, plain, "decode result")
	assert.Equal(t, "internal error", errs.MessageOf(wrapped))
	assert.Contains(t, wrapped.Error(), "connection refused", "the log line keeps the cause")
}
