//go:build integration

package redis

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/levee-dev/levee/adapters/transport"
)

// An address that accepts but never answers (a port that lands on a
// silent server) fails New within dial_timeout, as docs/TRANSPORTS.md
// promises: the ping waited go-redis's own 3s read timeout, whatever
// dial_timeout said, since go-redis ignores a context's deadline unless
// told to honour it.
func TestNewSilentServerWithinDialTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var conns []net.Conn
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	start := time.Now()
	p, err := New(context.Background(), Config{Addr: ln.Addr().String()}, transport.Settings{DialTimeout: 300 * time.Millisecond})
	took := time.Since(start)
	if p != nil {
		_ = p.Publisher.Close()
		_ = p.Subscriber.Close()
	}
	if !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("got %v, want ErrUnreachable", err)
	}
	if took > 2*time.Second {
		t.Fatalf("New took %v with a dial_timeout of 300ms", took)
	}
}
