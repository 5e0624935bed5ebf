package deduptest_test

import (
	"fmt"

	"github.com/levee-dev/levee/dedup/deduptest"
)

// The suite's durations: a store must end a lease and a window within
// Slack of them.
func ExampleRun() {
	fmt.Println(deduptest.Lease, deduptest.Window, deduptest.Slack)
	// Output: 300ms 600ms 150ms
}
