package fleet_test

import (
	"fmt"

	"github.com/levee-dev/levee/fleet"
)

func ExampleParseOnStoreError() {
	for _, s := range []string{"", "fail_open", "fail_closed", "sometimes"} {
		m, err := fleet.ParseOnStoreError(s)
		fmt.Println(m, err != nil)
	}
	f, ok := fleet.ParseForce("open")
	fmt.Println(f, ok)
	// Output:
	// local false
	// fail_open false
	// fail_closed false
	// local true
	// open true
}
