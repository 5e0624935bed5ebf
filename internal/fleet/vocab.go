package fleet

import (
	"time"

	vocab "github.com/levee-dev/levee/fleet"
)

// The public vocabulary (package github.com/levee-dev/levee/fleet), under
// the names this package's code uses.
type (
	LeaseRequest = vocab.LeaseRequest
	Lease        = vocab.Lease
	LeaseStore   = vocab.LeaseStore
	OnStoreError = vocab.OnStoreError
	BreakerState = vocab.BreakerState
	Force        = vocab.Force
	Report       = vocab.Report
	View         = vocab.View
	BreakerStore = vocab.BreakerStore
)

// The modes, states and forces.
const (
	Local         = vocab.Local
	FailOpen      = vocab.FailOpen
	FailClosed    = vocab.FailClosed
	StateClosed   = vocab.StateClosed
	StateOpen     = vocab.StateOpen
	StateHalfOpen = vocab.StateHalfOpen
	StateDraining = vocab.StateDraining
	ForceNone     = vocab.ForceNone
	ForceOpen     = vocab.ForceOpen
	ForceClosed   = vocab.ForceClosed
)

// ParseOnStoreError is vocab.ParseOnStoreError.
func ParseOnStoreError(s string) (OnStoreError, error) { return vocab.ParseOnStoreError(s) }

// ParseForce is vocab.ParseForce.
func ParseForce(s string) (Force, bool) { return vocab.ParseForce(s) }

// Observer receives a Pool's events, for metrics and logs. Its methods are
// called from the Pool's goroutine, never on the per-message path, and
// must not block. Nil methods are not allowed; embed NopObserver.
type Observer interface {
	// RoundTrip reports one store call, its latency and its error.
	RoundTrip(key string, d time.Duration, err error)
	// Leased reports tokens granted (negative: given back).
	Leased(key string, tokens int)
	// Fallback reports the store failing (err != nil, the mode in force)
	// or recovering (err == nil).
	Fallback(key string, mode OnStoreError, err error)
	// Released reports that the limit or breaker was closed while the
	// store was failing: it no longer runs on its on_store_error mode.
	Released(key string)
}

// NopObserver ignores every event.
type NopObserver struct{}

// RoundTrip does nothing.
func (NopObserver) RoundTrip(string, time.Duration, error) {}

// Leased does nothing.
func (NopObserver) Leased(string, int) {}

// Fallback does nothing.
func (NopObserver) Fallback(string, OnStoreError, error) {}

// Released does nothing.
func (NopObserver) Released(string) {}
