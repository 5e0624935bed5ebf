package kafka

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/adapters/transport"
)

// A broker address that accepts connections but does not speak Kafka (a
// typo'd port that lands on Redis, ZooKeeper's 2181, a proxy that never
// answers) fails New within the dial timeout, naming the address, instead
// of hanging in sarama's metadata refresh (30s read timeout, retried).
func TestNewNotKafkaFailsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); _ = c.Close() }()
		}
	}()
	addr := ln.Addr().String()
	done := make(chan error, 1)
	go func() {
		p, err := New(context.Background(), Config{Brokers: []string{addr}}, transport.Settings{DialTimeout: 200 * time.Millisecond})
		if p != nil {
			_ = p.Publisher.Close()
			_ = p.Subscriber.Close()
		}
		done <- err
	}()
	// A watchdog, not a timing assert: without the handshake New blocks
	// for minutes.
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("New hung on an address that accepts but does not speak Kafka")
	}
	if !errors.Is(err, transport.ErrUnreachable) || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "Kafka") {
		t.Fatalf("got %v, want ErrUnreachable naming %s as not answering Kafka", err, addr)
	}
}
