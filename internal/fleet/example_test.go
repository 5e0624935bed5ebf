package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/levee-dev/levee/internal/fleet"
)

// A Pool spends leased tokens; while its store fails, the on_store_error
// mode decides.
func Example() {
	store := fleet.NewMemStore()
	p, err := fleet.NewPool(fleet.PoolConfig{Store: store, Key: "payments", Member: "replica-1", Rate: 100, OnError: fleet.FailClosed})
	if err != nil {
		panic(err)
	}
	defer p.Close()
	ctx := context.Background()
	fmt.Println("leased:", p.Take(ctx, 0, true).OK())

	store.SetErr(errors.New("redis down"))
	for p.TryTake() { // spend what is held
	}
	r := p.Take(ctx, 300*time.Millisecond, true) // waits for the store, at most 300ms
	fmt.Println("store down, fail_closed admits:", r.OK(), "degraded:", p.Degraded())
	// Output:
	// leased: true
	// store down, fail_closed admits: false degraded: true
}
