package brokertest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// StallProxy forwards TCP connections to a real server. While stalled it
// still forwards what the client sends (so the server runs the command)
// but holds back the server's replies: a server that stopped answering,
// for the proxy's connections only (the shared server is left alone).
type StallProxy struct {
	ln     net.Listener
	mu     sync.Mutex
	stall  bool // guarded by mu
	resume chan struct{}
	conns  []net.Conn // guarded by mu
	wg     sync.WaitGroup
}

// NewStallProxy listens on a loopback port and forwards to upstream
// (host:port) until the test ends.
func NewStallProxy(t testing.TB, upstream string) *StallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &StallProxy{ln: ln, resume: make(chan struct{})}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Go(func() { _, _ = io.Copy(u, c); _ = u.Close() })
			p.wg.Go(func() { p.replies(c, u) })
		}
	})
	t.Cleanup(func() {
		p.SetStall(false)
		_ = ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's host:port.
func (p *StallProxy) Addr() string { return p.ln.Addr().String() }

// SetStall holds back (on) or lets through (off) the server's replies.
func (p *StallProxy) SetStall(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stall && !on {
		close(p.resume)
		p.resume = make(chan struct{})
	}
	p.stall = on
}

// Cut closes the connections open so far (a network cut); the proxy
// accepts new ones (a client that redials) and forwards them as before.
func (p *StallProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// replies copies the server's replies to the client, holding them while
// stalled.
func (p *StallProxy) replies(c, u net.Conn) {
	defer func() { _ = c.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := u.Read(buf)
		if n > 0 {
			p.mu.Lock()
			stalled, resume := p.stall, p.resume
			p.mu.Unlock()
			if stalled {
				<-resume
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
