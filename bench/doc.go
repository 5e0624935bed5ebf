// Package bench holds Levee's benchmarks: each per-message path measured in
// the same run as the alternative a user would otherwise pick (a bare
// handler, Watermill's own middlewares, x/time/rate, ...), plus scenario
// benchmarks. docs/BENCHMARKS.md has the figures and the commands.
//
//	go test -run '^$' -bench . -benchmem ./bench/
package bench
