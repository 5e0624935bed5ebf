package pgdedup_test

import (
	"context"
	"errors"
	"testing"

	"github.com/levee-dev/levee/adapters/pgdedup"
	"github.com/levee-dev/levee/dedup"
)

func TestNewRejectsBadOptions(t *testing.T) {
	if _, err := pgdedup.New(context.Background(), nil); !errors.Is(err, pgdedup.ErrInvalidConfig) {
		t.Errorf("nil pool: got %v, want ErrInvalidConfig", err)
	}
}

func TestStoreIsATxStore(t *testing.T) {
	var s dedup.Store = (*pgdedup.Store)(nil)
	if _, ok := s.(dedup.TxStore); !ok {
		t.Error("*pgdedup.Store is not a dedup.TxStore: handlers would get no Ticket")
	}
}

func TestMarkDoneNeedsATicket(t *testing.T) {
	var s pgdedup.Store
	if err := s.MarkDone(context.Background(), nil); !errors.Is(err, pgdedup.ErrNoTicket) {
		t.Errorf("got %v, want ErrNoTicket", err)
	}
	if err := s.MarkDoneSQL(context.Background(), nil); !errors.Is(err, pgdedup.ErrNoTicket) {
		t.Errorf("sql: got %v, want ErrNoTicket", err)
	}
	if _, err := s.MarkDoneAll(context.Background(), nil, []context.Context{context.Background()}); !errors.Is(err, pgdedup.ErrNoTicket) {
		t.Errorf("all: got %v, want ErrNoTicket", err)
	}
}

// Every Levee store tells whether an identity is done (the replayer asks).
var _ dedup.DoneChecker = (*pgdedup.Store)(nil)
