//go:build integration

package redisstore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/adapters/redisstore"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/redis/go-redis/v9"
)

// The letters that could never be stored (a Lua unpack limit) go through
// the Monitor into Redis: 4,000 and 20,000 metadata keys, three 4 MB values.
// Each is stored bounded, reads back with its failure keys, and the cut is
// recorded.
func TestMonitorStoresOversizedLetters(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, newPrefix(t))
	mon, err := dlqops.NewMonitor(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		keys, bigs int
		whole      bool
	}{{keys: 900, whole: true}, {keys: 4000}, {keys: 20000, bigs: 3}} {
		id := fmt.Sprintf("big-%d-%d", tc.keys, tc.bigs)
		msg := message.NewMessage(id, []byte(`{"order":1}`))
		msg.Metadata.Set(dlq.KeyOriginalTopic, "orders")
		msg.Metadata.Set(dlq.KeyFingerprint, "0123456789abcdef")
		msg.Metadata.Set(dlq.KeyError, "card declined")
		for i := range tc.keys {
			msg.Metadata.Set(fmt.Sprintf("x-hop-%05d", i), "v"+strconv.Itoa(i))
		}
		for i := range tc.bigs {
			msg.Metadata.Set(fmt.Sprintf("x-big-%d", i), strings.Repeat("b", 4<<20))
		}
		recID := dlqops.NewRecord(msg, "", time.Now()).ID // letter IDs hash the consumer and content
		if err := mon.Handle(msg); err != nil {
			t.Fatalf("%s: Handle: %v", id, err)
		}
		got, err := s.Get(ctx, recID)
		if err != nil {
			t.Fatalf("%s: Get: %v", id, err)
		}
		if got.Fingerprint != "0123456789abcdef" || got.Metadata[dlq.KeyError] != "card declined" || got.OriginalTopic != "orders" {
			t.Errorf("%s: failure keys lost: %+v", id, got.Metadata[dlq.KeyError])
		}
		if tc.whole {
			if got.Truncated != "" || len(got.Metadata) != tc.keys+3 {
				t.Errorf("%s: cut a letter within the caps: %d keys, %q", id, len(got.Metadata), got.Truncated)
			}
			continue
		}
		if len(got.Metadata) != dlqops.MaxStoredMetadataKeys || !strings.Contains(got.Truncated, fmt.Sprintf("of %d keys", tc.keys+tc.bigs+3)) {
			t.Errorf("%s: %d keys kept, Truncated %q", id, len(got.Metadata), got.Truncated)
		}
		for k, v := range got.Metadata {
			if len(v) > dlqops.MaxStoredMetadataValueBytes {
				t.Errorf("%s: value of %s is %d bytes", id, k, len(v))
			}
		}
	}
}

// silentRedis accepts connections, answers every command with +OK (PING
// with +PONG, HELLO with an error) until stall is set, then reads and never answers: a server
// that stopped responding.
type silentRedis struct {
	ln    net.Listener
	mu    sync.Mutex
	stall bool // guarded by mu
	conns []net.Conn
	wg    sync.WaitGroup
}

func newSilentRedis(t *testing.T) *silentRedis {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &silentRedis{ln: ln}
	r.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.mu.Unlock()
			r.wg.Go(func() { r.serve(c) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		r.mu.Lock()
		for _, c := range r.conns {
			_ = c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *silentRedis) serve(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "*")))
		var name string
		for i := range n {
			hdr, err := br.ReadString('\n')
			if err != nil {
				return
			}
			size, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(hdr, "$")))
			buf := make([]byte, size+2)
			if _, err := io.ReadFull(br, buf); err != nil {
				return
			}
			if i == 0 {
				name = strings.ToUpper(string(buf[:size]))
			}
		}
		r.mu.Lock()
		stall := r.stall
		r.mu.Unlock()
		if stall {
			continue
		}
		reply := "+OK\r\n"
		switch name {
		case "PING":
			reply = "+PONG\r\n"
		case "HELLO": // RESP2 then
			reply = "-ERR unknown command 'HELLO'\r\n"
		}
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
	}
}

// A Redis server that stops answering: every store call returns an error
// wrapping dlqops.ErrStore within the store timeout, Monitor.Handle Nacks
// within it, and Close completes.
func TestStalledServerGivesErrorsNotHangs(t *testing.T) {
	const timeout = 500 * time.Millisecond
	srv := newSilentRedis(t)
	ctx := context.Background()
	s, err := redisstore.Open(ctx, "redis://"+srv.ln.Addr().String()+"/0", redisstore.WithTimeout(timeout))
	if err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	srv.stall = true
	srv.mu.Unlock()

	calls := map[string]func() error{
		"Add":  func() error { _, err := s.Add(ctx, dlqops.Record{ID: "a", Fingerprint: "g"}); return err },
		"Get":  func() error { _, err := s.Get(ctx, "a"); return err },
		"List": func() error { _, err := s.List(ctx, dlqops.Filter{}); return err },
		"Groups": func() error {
			_, err := s.Groups(ctx, dlqops.GroupQuery{})
			return err
		},
		"Prune": func() error { _, err := s.Prune(ctx, dlqops.Retention{MaxCount: 1}, time.Now()); return err },
		"Attempts.Fail": func() error {
			_, _, err := s.Attempts().Fail(ctx, "h", "u", time.Now(), time.Minute)
			return err
		},
		"Monitor.Handle": func() error {
			mon, err := dlqops.NewMonitor(s, dlqops.WithStoreTimeout(timeout))
			if err != nil {
				return err
			}
			return mon.Handle(message.NewMessage("m", nil))
		},
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		if !errors.Is(err, dlqops.ErrStore) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: got %v want dlqops.ErrStore and context.DeadlineExceeded", name, err)
		}
		if d := time.Since(start); d > timeout+time.Second {
			t.Errorf("%s took %s with a %s store timeout", name, d, timeout)
		}
	}
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, redis.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs on a stalled server")
	}
}
