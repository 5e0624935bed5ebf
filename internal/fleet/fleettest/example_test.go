package fleettest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/levee-dev/levee/internal/fleet"
	"github.com/levee-dev/levee/internal/fleet/fleettest"
)

// A store is checked by running a scenario on it: here the in-process
// MemStore, on the real clock (the scenario sleeps 200 ms in all).
func ExampleRetripKeepsTheBaseline() {
	err := fleettest.RetripKeepsTheBaseline(context.Background(), fleet.NewMemStore(), time.Second)
	fmt.Println("violation:", err)
	// Output: violation: <nil>
}
