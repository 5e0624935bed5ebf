// Command sizes prints the non-test .go files over sizes.MaxFileLines
// lines and the functions over sizes.MaxFuncLines lines under root
// (default "."), largest first, each with its reason comment if it has
// one:
//
//	go run ./internal/sizes/cmd/sizes [root]
package main

import (
	"fmt"
	"os"

	"github.com/levee-dev/levee/internal/sizes"
)

func main() {
	root := "."
	if len(os.Args) > 1 {
		root = os.Args[1]
	}
	files, funcs, err := sizes.Scan(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("files over %d lines: %d\n", sizes.MaxFileLines, len(files))
	for _, f := range files {
		fmt.Println("  " + f.String())
	}
	fmt.Printf("functions over %d lines: %d\n", sizes.MaxFuncLines, len(funcs))
	for _, f := range funcs {
		fmt.Println("  " + f.String())
	}
}
