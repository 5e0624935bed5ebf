//go:build integration

package redisdedup_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/redisdedup"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/internal/brokertest"
)

// stallProxy forwards TCP connections to the real Redis. While stalled it
// still forwards what the client sends (so the server runs the command)
// but holds back the server's replies: a server that stopped answering,
// for this connection only (the shared server is left alone).
type stallProxy struct {
	ln     net.Listener
	mu     sync.Mutex
	stall  bool // guarded by mu
	resume chan struct{}
	conns  []net.Conn // guarded by mu
	wg     sync.WaitGroup
}

func newStallProxy(t *testing.T, upstream string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, resume: make(chan struct{})}
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
		p.setStall(false)
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

func (p *stallProxy) addr() string { return p.ln.Addr().String() }

func (p *stallProxy) setStall(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stall && !on {
		close(p.resume)
		p.resume = make(chan struct{})
	}
	p.stall = on
}

// replies copies the server's replies to the client, holding them while
// stalled.
func (p *stallProxy) replies(c, u net.Conn) {
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

// A Redis server that stops answering must not hold a message longer
// than the dedup store timeout: the claim fails at the timeout and the
// message is deferred (dedup.ErrStore), whatever the client's ReadTimeout.
// Before Open set ContextTimeoutEnabled, go-redis ignored the context's
// deadline and waited out its ReadTimeout (3s by default, 30s here).
func TestStoreTimeoutBoundsAStalledServer(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	p := newStallProxy(t, brokertest.RedisAddr())
	ctx := context.Background()
	s, err := redisdedup.Open(ctx, "redis://"+p.addr()+"/0?read_timeout=30s", brokertest.Name("levee:dedup:stall")+":")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	d, err := dedup.New(dedup.WithStore(s), dedup.WithStoreTimeout(200*time.Millisecond), dedup.WithLease(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	h := d.Middleware(func(*message.Message) ([]*message.Message, error) { ran++; return nil, nil })
	p.setStall(true)
	type result struct{ err error }
	got := make(chan result, 1)
	go func() {
		_, err := h(message.NewMessage("stalled-1", nil))
		got <- result{err}
	}()
	select {
	case r := <-got:
		if _, ok := levee.AsDeferral(r.err); !ok || !errors.Is(r.err, dedup.ErrStore) {
			t.Errorf("got %v, want a deferral wrapping dedup.ErrStore", r.err)
		}
	case <-time.After(10 * time.Second): // the store timeout is 200ms; the ReadTimeout 30s
		t.Error("the claim on a stalled server outlived the store timeout by 10s (go-redis waited for its ReadTimeout)")
		p.setStall(false)
		<-got
	}
	if ran != 0 {
		t.Errorf("handler ran %d times without a claim, want 0", ran)
	}
}

// A claim that Redis ran while its reply was held back (the server
// stalled past the store timeout) holds the identity with no delivery
// behind it. Once the server answers again, the redelivery in the same
// process runs at once; before, it was deferred as in progress elsewhere
// for the whole lease (a minute here).
func TestLostClaimReplyIsReleased(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	p := newStallProxy(t, brokertest.RedisAddr())
	s, err := redisdedup.Open(context.Background(), "redis://"+p.addr()+"/0", brokertest.Name("levee:dedup:lost")+":")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	d, err := dedup.New(dedup.WithStore(s), dedup.WithStoreTimeout(200*time.Millisecond), dedup.WithLease(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	h := d.Middleware(func(*message.Message) ([]*message.Message, error) { ran++; return nil, nil })
	p.setStall(true)
	if _, err := h(message.NewMessage("lost-1", nil)); !errors.Is(err, dedup.ErrStore) {
		t.Fatalf("stalled: got %v, want a deferral wrapping dedup.ErrStore", err)
	}
	p.setStall(false)
	// The held reply reached a connection go-redis gave up on; the claim
	// took effect in Redis all the same.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := h(message.NewMessage("lost-1", nil))
		if err == nil {
			break
		}
		if errors.Is(err, dedup.ErrInProgress) || time.Now().After(deadline) {
			t.Fatalf("redelivery: got %v, want nil (the lost claim released)", err)
		}
		time.Sleep(50 * time.Millisecond) // a store error while the proxy reconnects: the next redelivery
	}
	if ran != 1 {
		t.Errorf("handler runs: got %d, want 1", ran)
	}
}
