// Command apisurface prints, as a Markdown table, the exported identifiers
// of the packages in the directories it is given (default: the core
// packages, run from the repository root):
//
//	go run ./internal/apisurface/cmd/apisurface [dir ...]
package main

import (
	"fmt"
	"os"

	"github.com/levee-dev/levee/internal/apisurface"
)

// core lists the directories of the core packages, the default.
var core = []string{".", "middleware", "config", "dlq", "dlq/dlqops", "validate", "dlq/dlqtest", "breaker", "ratelimit", "priority", "batch", "tracing"}

func main() {
	dirs := os.Args[1:]
	if len(dirs) == 0 {
		dirs = core
	}
	counts := map[string]apisurface.Count{}
	for _, d := range dirs {
		c, err := apisurface.Dir(d)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		name := d
		if d == "." {
			name = "levee"
		}
		counts[name] = c
	}
	fmt.Print(apisurface.Table(counts))
}
