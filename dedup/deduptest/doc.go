// Package deduptest is the conformance suite every dedup.Store passes: the
// memory store in the core module (TestMemStoreConformance), the Redis and
// PostgreSQL stores in the adapters module (their TestConformance, under
// the integration build tag). The suite uses real time (leases and
// windows of Lease and Window) because a networked store keeps its own
// clock; its subtests run in parallel, so a run takes about one window.
//
// A store package runs the suite from its own tests:
//
//	func TestConformance(t *testing.T) {
//		deduptest.Run(t, "fresh-prefix", func(t *testing.T) dedup.Store { return openStore(t) })
//	}
package deduptest
