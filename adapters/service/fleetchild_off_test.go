//go:build !integration

package service_test

// runFleetChild is in fleetchild_integration_test.go; without the
// integration tag no test starts a replica.
func runFleetChild() int { return 2 }
