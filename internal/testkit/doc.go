// Package testkit is Levee's test kit: a GoChannel router harness that
// publishes messages and waits until each one is settled (acked or
// dead-lettered), with counts; helpers for testing/synctest; and goleak
// wiring for TestMain.
package testkit
