package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  levee config check FILE   validate FILE: every problem with its line, or the
                            resolved stacks and each setting's value and source
  levee dlq [--config FILE] [--json] groups|list|show ID|replay|archive|prune
                            inspect and replay dead letters (levee dlq --help)
  levee fleet [--config FILE] breaker KEY force open|closed|none  (or: status)
                            the fleet breaker's kill switch (levee fleet help)
  levee help                this message (also -h, --help)
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "config":
		return runConfig(args[1:], stdout, stderr)
	case "dlq":
		return runDLQ(args[1:], stdout, stderr)
	case "fleet":
		return runFleet(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "levee: unknown command %q\n%s", args[0], usage)
	return 2
}
