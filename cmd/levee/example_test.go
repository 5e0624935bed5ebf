package main

import "os"

func Example_configCheck() {
	run([]string{"config", "check", "testdata/levee.yaml"}, os.Stdout, os.Stdout)
	// Output:
	// testdata/levee.yaml: ok
	// handler audit:
	//   1. recover
	// handler payments:
	//   1. recover
	//   2. timeout 2s
}
