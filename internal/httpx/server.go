package httpx

import (
	"cmp"
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
		Handler:           h,
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
