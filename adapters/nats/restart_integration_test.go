//go:build integration

package nats_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/levee-dev/levee/adapters/nats"
	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/internal/brokertest"
)

// privateNATS runs a nats-server with JetStream that this test owns (its own
// port and store directory), so it can be killed and restarted without
// touching the shared server on 4222.
type privateNATS struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
}

func (p *privateNATS) start() {
	p.t.Helper()
	p.cmd = exec.Command("nats-server", "-a", "127.0.0.1", "-p", strconv.Itoa(p.port), "-js", "-sd", p.dir)
	require.NoError(p.t, p.cmd.Start())
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.port)); err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatal("private nats-server did not start")
}

// stop kills the server process this test started (by its pid).
func (p *privateNATS) stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		p.cmd = nil
	}
}

// TestNATSBrokerRestart kills the JetStream server mid-run and starts it
// again: consumption resumes and every published message is consumed
// (at-least-once; duplicates allowed, losses not).
func TestNATSBrokerRestart(t *testing.T) {
	if _, err := exec.LookPath("nats-server"); err != nil {
		t.Skip("nats-server not installed")
	}
	srv := &privateNATS{t: t, port: brokertest.FreePort(t), dir: t.TempDir()}
	srv.start()
	t.Cleanup(srv.stop)

	url := fmt.Sprintf("nats://127.0.0.1:%d", srv.port)
	tr, err := nats.New(context.Background(), nats.Config{URL: url},
		transport.Settings{Concurrency: 4, AckDeadline: 3 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })

	topic := "restart_" + strings.ToLower(watermill.NewShortUUID())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := tr.Subscriber.Subscribe(ctx, topic)
	require.NoError(t, err)

	const total = 200
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	consumed := make(chan struct{})
	go func() {
		for msg := range ch {
			mu.Lock()
			seen[msg.UUID] = true
			n := len(seen)
			mu.Unlock()
			msg.Ack()
			if n == total {
				close(consumed)
			}
		}
	}()

	publishRetrying := func(i int) {
		msg := message.NewMessage("m-"+strconv.Itoa(i), []byte(strconv.Itoa(i)))
		deadline := time.Now().Add(30 * time.Second)
		for {
			err := tr.Publisher.Publish(topic, msg)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("publish %d: %v", i, err)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for i := range total {
		if i == total/2 {
			srv.stop()
			time.Sleep(time.Second)
			srv.start()
		}
		publishRetrying(i)
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-consumed:
	case <-time.After(60 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("consumed %d of %d distinct messages after the restart", len(seen), total)
	}
}
