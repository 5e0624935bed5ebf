//go:build integration

package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/levee-dev/levee/internal/brokertest"
)

// With -fleet the demo runs 3 replicas of payments against one fleet limit
// of 100/s: every order is paid once, and the fleet's rate stays near the
// limit (200 orders: 2s plus the first leases' burst, so within 85-135/s).
func TestRunFleetDemo(t *testing.T) {
	brokertest.SkipIfDown(t, brokertest.RedisURL())
	o := testOptions()
	o.fleet, o.orders = brokertest.RedisURL(), 200
	var out bytes.Buffer
	if err := run(context.Background(), o, &out); err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	var total int
	var secs, rate float64
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "  fleet: ") {
			if _, err := fmt.Sscanf(line, "  fleet: %d payments in %fs = %f/s", &total, &secs, &rate); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
		}
	}
	if total != 200 {
		t.Errorf("%d payments, want 200", total)
	}
	if rate < 85 || rate > 135 {
		t.Errorf("fleet rate %.0f/s, want near the 100/s limit (85 to 135: the first leases, the tail)", rate)
	}
}
