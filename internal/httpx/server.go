package httpx

import (
	"cmp"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Limits bound what one client can hold of a server: time to send headers, time to send the body, time
// a keep-alive connection may sit idle, time to take a reply, header size, and how many connections are
// open at once. Zero fields mean the defaults below.
type Limits struct {
	ReadHeader     time.Duration // headers must arrive within this
	Read           time.Duration // the whole request, body included, within this (then 408 or a close)
	Write          time.Duration // the reply within this; a route that waits longer extends it (LongReply)
	Idle           time.Duration // a keep-alive connection without a request is closed after this
	MaxHeaderBytes int
	// MaxConns caps open connections. When a new one would pass the cap, the connection idle the
	// longest is closed, else the one that has been waiting longest without sending a byte, else the new
	// one: an attacker's idle connections make room for the dispatcher and /healthz instead of starving
	// them. Keep it below the process's file descriptor limit (ulimit -n) minus the database pool.
	MaxConns int
}

// Defaults for Limits.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10 // a Supabase JWT is about 1 KiB; auth refuses tokens over 16 KiB
	DefaultMaxConns          = 512
)

func (l Limits) withDefaults() Limits {
	l.ReadHeader = cmp.Or(l.ReadHeader, DefaultReadHeaderTimeout)
	l.Read = cmp.Or(l.Read, DefaultReadTimeout)
	l.Write = cmp.Or(l.Write, DefaultWriteTimeout)
	l.Idle = cmp.Or(l.Idle, DefaultIdleTimeout)
	l.MaxHeaderBytes = cmp.Or(l.MaxHeaderBytes, DefaultMaxHeaderBytes)
	l.MaxConns = cmp.Or(l.MaxConns, DefaultMaxConns)
	return l
}

// NewServer is an http.Server for h with every connection bounded by l.
func NewServer(h http.Handler, l Limits) *http.Server {
	l = l.withDefaults()
	cc := &connCap{max: l.MaxConns, conns: map[net.Conn]*connEntry{}}
	return &http.Server{
		Handler:           unreadBodyGuard(h),
		ReadHeaderTimeout: l.ReadHeader,
		ReadTimeout:       l.Read,
		WriteTimeout:      l.Write,
		IdleTimeout:       l.Idle,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ConnState:         cc.track,
	}
}

// LongReply lets the current request's handler take up to d to reply (a kiotviet-sync that waits for
// its run, a dispatch with wait). Call it after the body has been read: it also lifts the body deadline,
// which would otherwise end the wait (net/http cancels the request's context when a read times out).
func LongReply(w http.ResponseWriter, d time.Duration) {
	rc := http.NewResponseController(w)
	until := time.Now().Add(d)
	_ = rc.SetWriteDeadline(until)
	_ = rc.SetReadDeadline(until)
}

type connEntry struct {
	state http.ConnState
	since time.Time
}

// connCap keeps the open connections and their states (http.Server.ConnState runs in the accept loop
// for StateNew, so eviction happens before the new connection is served).
type connCap struct {
	max   int
	mu    sync.Mutex
	conns map[net.Conn]*connEntry
}

func (c *connCap) track(conn net.Conn, state http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch state {
	case http.StateClosed, http.StateHijacked:
		delete(c.conns, conn)
		return
	case http.StateNew:
		c.conns[conn] = &connEntry{state: state, since: time.Now()}
		if len(c.conns) > c.max {
			victim := c.evictable(conn)
			if victim == nil {
				victim = conn
			}
			delete(c.conns, victim)
			_ = victim.Close()
		}
		return
	}
	if e, ok := c.conns[conn]; ok {
		e.state, e.since = state, time.Now()
	}
}

// evictable is the connection idle the longest, else the one waiting longest without a byte sent.
func (c *connCap) evictable(except net.Conn) net.Conn {
	var best net.Conn
	var bestEntry *connEntry
	rank := func(s http.ConnState) int {
		switch s {
		case http.StateIdle:
			return 2
		case http.StateNew:
			return 1
		}
		return 0
	}
	for conn, e := range c.conns {
		if conn == except || rank(e.state) == 0 {
			continue
		}
		if best == nil || rank(e.state) > rank(bestEntry.state) ||
			(rank(e.state) == rank(bestEntry.state) && e.since.Before(bestEntry.since)) {
			best, bestEntry = conn, e
		}
	}
	return best
}

// unreadBodyGuard makes every reply that begins before the request's body was read to its end (/healthz,
// /metrics, a 404 or 405, a refusal) close the connection without waiting for that body. net/http would
// otherwise read the unread body before writing the reply: a client that announces a body and never
// sends it would hold the reply, and its connection, active rather than idle, would be one the cap cannot
// close to make room, for the whole body deadline. WriteError does the same for refusals; this covers
// every route, the mux's own replies included.
func unreadBodyGuard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		body := &watchedBody{ReadCloser: r.Body}
		r.Body = body
		h.ServeHTTP(&guardedWriter{ResponseWriter: w, body: body}, r)
	})
}

// watchedBody notes when its reader reached the end.
type watchedBody struct {
	io.ReadCloser
	done bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.done = true
	}
	return n, err
}

// guardedWriter closes after the reply when it begins with the body unread. Unwrap keeps
// http.ResponseController (LongReply, deadlines, Flush) working through it.
type guardedWriter struct {
	http.ResponseWriter
	body    *watchedBody
	checked bool
}

func (g *guardedWriter) check() {
	if g.checked {
		return
	}
	g.checked = true
	if !g.body.done {
		g.Header().Set("Connection", "close")
		// and no reading of it after the reply either: a deadline of now ends that read at once
		_ = http.NewResponseController(g.ResponseWriter).SetReadDeadline(time.Now())
	}
}

func (g *guardedWriter) WriteHeader(code int) {
	g.check()
	g.ResponseWriter.WriteHeader(code)
}

func (g *guardedWriter) Write(p []byte) (int, error) {
	g.check()
	return g.ResponseWriter.Write(p)
}

func (g *guardedWriter) Unwrap() http.ResponseWriter { return g.ResponseWriter }
