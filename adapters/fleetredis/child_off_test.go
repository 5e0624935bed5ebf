//go:build !integration

package fleetredis_test

const childEnv = "LEVEE_FLEET_CHILD"

// runChild exists only with the integration tests.
func runChild() int { return 2 }
