package httpx_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/kvsync/kvsync/internal/errs"
	"github.com/kvsync/kvsync/internal/httpx"
)

// Every code has a status of its own choosing: a code added to errs without a line in httpx's table
// would silently be a 500.
func TestEveryCodeHasAStatus(t *testing.T) {
	t.Parallel()
	for _, c := range errs.Codes {
		status, _ := httpx.Status(errs.E(c, "x"))
		if c == errs.Internal {
			assert.Equal(t, http.StatusInternalServerError, status)
			continue
		}
		assert.NotEqual(t, http.StatusInternalServerError, status, "code %s has no status", c)
	}
}

func TestStatusShowsOnlySafeMessages(t *testing.T) {
	t.Parallel()
	status, msg := httpx.Status(fmt.Errorf("claim: %w", errs.E(errs.Conflict, "the credential is already syncing")))
	assert.Equal(t, http.StatusConflict, status)
	assert.Equal(t, "the credential is already syncing", msg)
	status, msg = httpx.Status(errors.New("dial tcp: secret-host refused"))
	assert.Equal(t, http.StatusInternalServerError, status)
	assert.Equal(t, "internal error", msg)
}
