//go:build integration

package adapters_test

// integration is true when the integration tests (real brokers) are built
// in; their clients keep background goroutines, so TestMain skips goleak.
const integration = true
