package httpx_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kvsync/kvsync/internal/errs"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kvsync/kvsync/internal/httpx"
)

// serveBounded starts httpx.NewServer on a real listener: /healthz answers, /refuse answers 401 before
// reading its body (as a handler does when authentication fails), /decode reads its body with Decode,
// /long waits past the server's write timeout after LongReply.
func serveBounded(t *testing.T, l httpx.Limits, long chan struct{}) string {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpx.JSON(w, http.StatusOK, map[string]any{"ok": true})
	})
	mux.HandleFunc("POST /refuse", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, r, log, errs.E(errs.Unauthorized, "missing credentials"))
	})
	mux.HandleFunc("POST /decode", func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		if err := httpx.Decode(w, r, &v); err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		httpx.JSON(w, http.StatusOK, v)
	})
	mux.HandleFunc("POST /long", func(w http.ResponseWriter, r *http.Request) {
		httpx.LongReply(w, time.Minute)
		<-long // released by the test once the server's own write timeout has passed
		httpx.JSON(w, http.StatusOK, map[string]any{"ok": true})
	})
	srv := httpx.NewServer(mux, l)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// readReply reads one response from c, failing the test if none comes within d.
func readReply(t *testing.T, c net.Conn, d time.Duration) *http.Response {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(d)))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err, "a reply within %s", d)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// waitClosed reads from c until the server closes it; fails if that takes longer than d.
func waitClosed(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(d)))
	_, err := io.Copy(io.Discard, c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server kept the connection open for more than %s", d)
	}
}

func TestIdleKeepAliveIsClosed(t *testing.T) {
	addr := serveBounded(t, httpx.Limits{Idle: 200 * time.Millisecond}, nil)
	c := dial(t, addr)
	_, err := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, readReply(t, c, 5*time.Second).StatusCode)
	// The keep-alive connection now sits idle: the server closes it after the idle timeout (200 ms), well
	// within the 5 s this test waits.
	waitClosed(t, c, 5*time.Second)
}

func TestSlowOrMissingBodyGets408OrClose(t *testing.T) {
	addr := serveBounded(t, httpx.Limits{Read: 300 * time.Millisecond}, nil)
	c := dial(t, addr)
	_, err := fmt.Fprintf(c, "POST /decode HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":")
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		assert.Equal(t, http.StatusRequestTimeout, resp.StatusCode)
		assert.True(t, resp.Close, "the connection is closed after the 408")
	} else {
		require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "no reply and no close within 5 s")
	}
	waitClosed(t, c, 5*time.Second)
}

func TestRefusalIsAnsweredWithoutReadingTheBody(t *testing.T) {
	// A body deadline far beyond the test's wait: only a reply that does not read the body can arrive.
	addr := serveBounded(t, httpx.Limits{Read: time.Hour}, nil)
	c := dial(t, addr)
	_, err := fmt.Fprintf(c, "POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n")
	require.NoError(t, err)
	resp := readReply(t, c, 5*time.Second)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.True(t, resp.Close)
	waitClosed(t, c, 5*time.Second)
}

func TestHeaderSizeIsLimited(t *testing.T) {
	addr := serveBounded(t, httpx.Limits{MaxHeaderBytes: 4 << 10}, nil)
	c := dial(t, addr)
	_, err := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 64<<10))
	require.NoError(t, err)
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, readReply(t, c, 5*time.Second).StatusCode)
}

func TestLongReplyOutlivesTheWriteTimeout(t *testing.T) {
	long := make(chan struct{})
	addr := serveBounded(t, httpx.Limits{Write: 200 * time.Millisecond, Read: 200 * time.Millisecond}, long)
	c := dial(t, addr)
	_, err := fmt.Fprintf(c, "POST /long HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
	require.NoError(t, err)
	// Release the handler only once the server-wide write and read deadlines have certainly passed.
	time.AfterFunc(time.Second, func() { close(long) })
	assert.Equal(t, http.StatusOK, readReply(t, c, 10*time.Second).StatusCode)
}

func TestConnectionCapKeepsHealthzAnswering(t *testing.T) {
	const max = 8
	addr := serveBounded(t, httpx.Limits{MaxConns: max}, nil)
	// Fill the cap with idle keep-alive connections and with connections that never send a byte.
	held := make([]net.Conn, 0, 2*max)
	for i := 0; i < max; i++ {
		c := dial(t, addr)
		if i%2 == 0 {
			_, err := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, readReply(t, c, 5*time.Second).StatusCode)
		}
		held = append(held, c)
	}
	// Each new client is still served, the cap held by closing the held connections that do nothing.
	for i := 0; i < 2*max; i++ {
		c := dial(t, addr)
		_, err := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, readReply(t, c, 5*time.Second).StatusCode, "request %d past the cap", i)
		held = append(held, c)
	}
	open := 0
	for _, c := range held {
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
			open++
		}
	}
	assert.LessOrEqual(t, open, max, "never more than the cap open")
	assert.Greater(t, open, 0)
}

// Any route that answers without reading a body it was announced (/healthz, a 404 or 405 of the mux)
// answers at once and closes, as a refusal does: net/http would otherwise read the body before writing
// the reply, and such a connection, active rather than idle, is one the cap cannot close to make room.
func TestUnreadBodyNeverHoldsAReply(t *testing.T) {
	// A body deadline far beyond the test's wait: only a reply that does not wait for the body can arrive.
	addr := serveBounded(t, httpx.Limits{Read: time.Hour}, nil)
	for _, req := range []string{
		"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n",
		"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n",
		"PUT /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n",
		"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
	} {
		c := dial(t, addr)
		_, err := fmt.Fprint(c, req)
		require.NoError(t, err)
		resp := readReply(t, c, 5*time.Second)
		assert.True(t, resp.Close, "%q: the connection is closed after the reply", req)
		waitClosed(t, c, 5*time.Second)
	}
	// a body that was read keeps its connection
	c := dial(t, addr)
	_, err := fmt.Fprintf(c, "POST /decode HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
	require.NoError(t, err)
	resp := readReply(t, c, 5*time.Second)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.False(t, resp.Close, "a request whose body was read keeps its keep-alive connection")
}
