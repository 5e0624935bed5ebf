package main

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/adapters/transport"
	"github.com/levee-dev/levee/config"
	"github.com/levee-dev/levee/dlq"
)

// postgresWarning returns a warning when the file's handlers over a
// PostgreSQL transport have more consumers than the subscriber has
// connections, or "". Each message in flight holds a connection of the
// subscriber's share of max_conns whatever its topic, so the service's
// in-flight total is that share, not concurrency per handler, and what a
// concern holds (an open breaker, a priority queue, a rate-limit wait)
// keeps its connection while the other handlers wait. The consumers are
// the file's handlers and, with a store, the dead-letter monitor's topics
// (adapters/service subscribes each handler's): a service may have more.
func postgresWarning(cfg *config.Config, tc adapters.TransportConfig, settings []config.Setting) string {
	if tc.Kind != "postgres" || tc.Postgres == nil {
		return ""
	}
	s := transport.Settings{Concurrency: tc.Concurrency}.WithDefaults()
	topics, monitored := 0, map[string]bool{}
	_, hasStore := cfg.Store()
	for _, name := range cfg.HandlerNames() {
		topics++
		if dc, ok := config.Value[dlq.Config](cfg.Handler(name), "dlq"); ok && hasStore {
			monitored[cmp.Or(dc.Topic, name+".dlq")] = true
		}
	}
	consumers := (topics + len(monitored)) * s.Concurrency
	pub, sub := tc.Postgres.Conns(s)
	if consumers <= sub {
		return ""
	}
	what := fmt.Sprintf("the file's %d handlers", topics)
	if len(monitored) > 0 {
		what += fmt.Sprintf(" and the %d dead-letter topics the service's monitor consumes", len(monitored))
	}
	return fmt.Sprintf("%s: %s at concurrency %d are %d consumers, and each message in flight holds one of the subscriber's %d connections "+
		"(max_conns %d less the publisher's %d): at most %d messages are in flight across the service, not %d per handler, and the messages a breaker, "+
		"scheduler or rate limit holds keep theirs while the other handlers wait; for every handler's concurrency set max_conns to %d, "+
		"within PostgreSQL's max_connections (100 by default) less the stores' pools, or lower the concurrency (docs/TRANSPORTS.md, \"Many handlers in one service\")",
		locateSetting(settings, "transport.postgres.max_conns", "transport.concurrency", "transport.kind"), what, s.Concurrency, consumers,
		sub, pub+sub, pub, sub, s.Concurrency, consumers+pub)
}

// locateSetting returns "file:line: path" for the first of paths the file sets,
// else the first path alone.
func locateSetting(settings []config.Setting, paths ...string) string {
	for _, p := range paths {
		for _, st := range settings {
			if st.Path == p && st.Source != "default" {
				src, _, _ := strings.Cut(st.Source, ",")
				return src + ": " + p
			}
		}
	}
	return paths[0]
}
