package main

import (
	"fmt"
	"io"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/cmd/internal/console"
	"github.com/levee-dev/levee/config"
)

func runConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 || args[0] != "check" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cfg, err := config.Load(args[1])
	if err != nil {
		fmt.Fprintf(stderr, "levee: %s\n", termSafe(err.Error(), true))
		return 1
	}
	// The transport section belongs to adapters, outside the core.
	var tc adapters.TransportConfig
	if err := cfg.Transport().Decode(&tc); err != nil {
		fmt.Fprintf(stderr, "levee: %s\n", termSafe(err.Error(), true))
		return 1
	}
	// So is the console section (levee dlq serve).
	var cc console.Config
	if err := cfg.Console().Decode(&cc); err != nil {
		fmt.Fprintf(stderr, "levee: %s\n", termSafe(err.Error(), true))
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", args[1])
	if !cfg.Transport().IsZero() {
		caps := tc.Capabilities()
		fmt.Fprintf(stdout, "transport %s: %d in flight per topic, ack deadline %s\n", caps.Kind, caps.MaxInFlight, caps.AckDeadline)
	}
	fmt.Fprint(stdout, cfg.Describe())
	return 0
}
