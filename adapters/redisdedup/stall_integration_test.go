//go:build integration

package redisdedup_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/redisdedup"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/internal/brokertest"
)

// A Redis server that stops answering must not hold a message longer
// than the dedup store timeout: the claim fails at the timeout and the
// message is deferred (dedup.ErrStore), whatever the client's ReadTimeout.
// Before Open set ContextTimeoutEnabled, go-redis ignored the context's
// deadline and waited out its ReadTimeout (3s by default, 30s here).
func TestStoreTimeoutBoundsAStalledServer(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisAddr())
	p := brokertest.NewStallProxy(t, brokertest.RedisAddr())
	ctx := context.Background()
	s, err := redisdedup.Open(ctx, "redis://"+p.Addr()+"/0?read_timeout=30s", brokertest.Name("levee:dedup:stall")+":")
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
	p.SetStall(true)
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
		p.SetStall(false)
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
	p := brokertest.NewStallProxy(t, brokertest.RedisAddr())
	s, err := redisdedup.Open(context.Background(), "redis://"+p.Addr()+"/0", brokertest.Name("levee:dedup:lost")+":")
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
	p.SetStall(true)
	if _, err := h(message.NewMessage("lost-1", nil)); !errors.Is(err, dedup.ErrStore) {
		t.Fatalf("stalled: got %v, want a deferral wrapping dedup.ErrStore", err)
	}
	p.SetStall(false)
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
