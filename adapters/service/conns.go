package service

import (
	"fmt"

	"github.com/levee-dev/levee/adapters"
	"github.com/levee-dev/levee/adapters/postgres"
	"github.com/levee-dev/levee/adapters/transport"
)

// connsWarning returns, over PostgreSQL, a warning when the service's
// subscriptions (its handlers' topics and the monitored dead-letter
// topics) have more consumers than the transport's subscriber has
// connections, else "". Each message in flight holds one of those
// connections whatever its topic, so the service's in-flight total is
// the subscriber's share of max_conns, and a message a concern holds (an
// open breaker, a priority queue, a rate-limit wait) keeps its
// connection while the other handlers wait. `levee config check` warns
// from the file alone; the service knows every topic.
func (s *Service) connsWarning(monitored int) string {
	tc, err := adapters.FromConfig(s.Config)
	if err != nil || tc.Kind != postgres.Kind || tc.Postgres == nil {
		return ""
	}
	st := transport.Settings{Concurrency: tc.Concurrency}.WithDefaults()
	pub, sub := tc.Postgres.Conns(st)
	s.mu.Lock()
	handlers := len(s.handlers)
	s.mu.Unlock()
	consumers := (handlers + monitored) * st.Concurrency
	if consumers <= sub {
		return ""
	}
	return fmt.Sprintf("levee/service: warning: over postgres the service's %d handlers and %d monitored dead-letter topics at concurrency %d are %d consumers, "+
		"and each message in flight holds one of the subscriber's %d connections (max_conns %d less the publisher's %d): at most %d messages are in flight "+
		"across the service, and the messages a breaker, scheduler or rate limit holds keep theirs while the other handlers wait; "+
		"for every handler's concurrency set transport.postgres.max_conns to %d, within PostgreSQL's max_connections, or lower the concurrency "+
		"(docs/TRANSPORTS.md, \"Many handlers in one service\")",
		handlers, monitored, st.Concurrency, consumers, sub, pub+sub, pub, sub, consumers+pub)
}
