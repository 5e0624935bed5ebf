// Package dlqtest is the conformance suite every dlqops.Store implementation
// passes (Run: the in-memory store in dlq's tests, the PostgreSQL and Redis
// stores in adapters/pgstore's and adapters/redisstore's integration
// tests), and the one of dlq.AttemptStore implementations (RunAttempts,
// with TwoRetriers: two Retriers sharing a store dead-letter a poison message
// after exactly max attempts).
//
// A store package runs the suite from its own tests:
//
//	func TestConformance(t *testing.T) {
//		dlqtest.Run(t, func(t *testing.T) dlqops.Store { return openFreshStore(t) })
//	}
//
// Letter builds the dead letters the suite uses, for a store's own tests.
package dlqtest
