//go:build integration

package pgdedup_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/adapters/pgdedup"
	"github.com/levee-dev/levee/dedup"
	"github.com/levee-dev/levee/internal/brokertest"
)

// stalledInbox returns a Store on a fresh table (created through p) whose
// own pool reaches PostgreSQL through a brokertest.StallProxy.
func stalledInbox(t *testing.T, p *pgxpool.Pool) (*pgdedup.Store, *brokertest.StallProxy) {
	t.Helper()
	u, err := url.Parse(brokertest.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := brokertest.NewStallProxy(t, u.Host)
	u.Host = proxy.Addr()
	table := brokertest.Fresh(t, "levee_dedup_stall", func(name string) error {
		_, err := p.Exec(context.Background(), "DROP TABLE IF EXISTS "+pgx.Identifier{name}.Sanitize())
		return err
	})
	created, err := pgdedup.New(context.Background(), p, pgdedup.WithTable(table), pgdedup.WithPruneEvery(0))
	if err != nil {
		t.Fatal(err)
	}
	_ = created.Close()
	s, err := pgdedup.Open(context.Background(), u.String(), pgdedup.WithTable(table), pgdedup.WithoutMigrate(), pgdedup.WithPruneEvery(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, proxy
}

// A PostgreSQL server that stops answering in the middle of a claim: the
// claim fails at the dedup store timeout and the message is deferred
// (dedup.ErrStore), the handler does not run; the claim the server ran
// all the same (its reply held back) is released by this process's
// next claim of the identity, so the redelivery runs at once and once,
// instead of waiting as in progress for the lease (a minute here).
func TestStalledClaimIsDeferredAndReleased(t *testing.T) {
	p := pool(t)
	s, proxy := stalledInbox(t, p)
	d, err := dedup.New(dedup.WithStore(s), dedup.WithStoreTimeout(200*time.Millisecond), dedup.WithLease(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	h := d.Middleware(func(*message.Message) ([]*message.Message, error) { ran++; return nil, nil })
	// One claim first, so that the connection has the claim's statement
	// prepared: stalled, the claim is then sent and run at once (pgx
	// prepares a statement in a round trip of its own).
	if _, err := h(message.NewMessage("warm-1", nil)); err != nil {
		t.Fatal(err)
	}
	proxy.SetStall(true)
	got := make(chan error, 1)
	go func() {
		_, err := h(message.NewMessage("stalled-1", nil))
		got <- err
	}()
	select {
	case err := <-got:
		if _, ok := levee.AsDeferral(err); !ok || !errors.Is(err, dedup.ErrStore) {
			t.Fatalf("stalled: got %v, want a deferral wrapping dedup.ErrStore", err)
		}
	case <-time.After(10 * time.Second): // the store timeout is 200ms
		proxy.SetStall(false)
		t.Fatalf("the claim on a stalled server outlived the store timeout by 10s (%v)", <-got)
	}
	var held int
	if err := p.QueryRow(context.Background(), "SELECT count(*) FROM "+s.Table()+" WHERE NOT done").Scan(&held); err != nil {
		t.Fatal(err)
	}
	if held != 1 {
		t.Fatalf("claims the stalled server ran: got %d, want 1 (the test needs a claim whose reply was lost)", held)
	}
	proxy.SetStall(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := h(message.NewMessage("stalled-1", nil))
		if err == nil {
			break
		}
		if errors.Is(err, dedup.ErrInProgress) || time.Now().After(deadline) {
			t.Fatalf("redelivery: got %v, want nil (the lost claim released)", err)
		}
		time.Sleep(50 * time.Millisecond) // a store error while the pool reconnects: the next redelivery
	}
	if _, err := h(message.NewMessage("stalled-1", nil)); err != nil {
		t.Fatalf("duplicate: got %v, want nil (acked without running)", err)
	}
	if ran != 2 {
		t.Errorf("handler runs: got %d, want 2 (warm-1 and stalled-1 once)", ran)
	}
}
