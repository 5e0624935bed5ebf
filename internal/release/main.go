// Command release turns a checkout of the Levee repository into the
// release commit of a version: it rewrites the go.mod and go.sum files of the
// published modules (the core, adapters and cmd) so that each requires its
// sibling modules at the version being released, without replace
// directives, and prints the tags to create. RELEASING.md, at the
// repository's root, describes the whole flow.
//
// Usage, in a checkout without uncommitted changes:
//
//	go run ./internal/release vX.Y.Z
package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	if len(os.Args) != 2 || strings.HasPrefix(os.Args[1], "-") {
		fmt.Fprintln(os.Stderr, "usage: go run ./internal/release vX.Y.Z  (from the repository's root; see RELEASING.md)")
		os.Exit(2)
	}
	version := os.Args[1]
	root, err := git(".", nil, "rev-parse", "--show-toplevel")
	if err != nil {
		fmt.Fprintln(os.Stderr, "release: run it in a checkout of the repository:", err)
		os.Exit(1)
	}
	tags, err := Prepare(root, version)
	if err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
	names := make([]string, len(tags))
	for i, t := range tags {
		names[i] = t.Name
		fmt.Printf("%s: go.mod and go.sum in release form, tag %s\n", t.Path, t.Name)
	}
	fmt.Printf("\nNow commit and tag (the release commit stays on its tags; see RELEASING.md):\n\n")
	fmt.Printf("\tgit commit -qam 'release %s'\n", version)
	for _, n := range names {
		fmt.Printf("\tgit tag %s\n", n)
	}
	fmt.Printf("\tgit push origin %s\n", strings.Join(names, " "))
	fmt.Printf("\tgit switch main\n")
}
