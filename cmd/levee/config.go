package main

import (
	"fmt"
	"io"

	"github.com/levee-dev/levee/middleware"
)

func runConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 || args[0] != "check" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cfg, err := middleware.LoadConfig(args[1])
	if err != nil {
		fmt.Fprintf(stderr, "levee: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", args[1])
	fmt.Fprint(stdout, cfg.Describe())
	return 0
}
