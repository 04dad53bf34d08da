package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// The process tests run the real kvsync binary. It is built once per test binary, not once per test:
// those tests run in parallel, and a link per test would cost more than the tests themselves.
var kvsyncBin struct {
	once     sync.Once
	dir, bin string
	err      error
}

func buildBinary(t *testing.T) string {
	t.Helper()
	kvsyncBin.once.Do(func() {
		if kvsyncBin.dir, kvsyncBin.err = os.MkdirTemp("", "kvsync-test-bin-"); kvsyncBin.err != nil {
			return
		}
		kvsyncBin.bin = filepath.Join(kvsyncBin.dir, "kvsync")
		if out, err := exec.Command("go", "build", "-o", kvsyncBin.bin, ".").CombinedOutput(); err != nil {
			kvsyncBin.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	require.NoError(t, kvsyncBin.err)
	return kvsyncBin.bin
}

// TestMain removes the binary buildBinary made once the tests are done.
func TestMain(m *testing.M) {
	code := m.Run()
	if kvsyncBin.dir != "" {
		_ = os.RemoveAll(kvsyncBin.dir)
	}
	os.Exit(code)
}
