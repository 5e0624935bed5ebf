package redisdedup_test

import (
	"errors"
	"testing"

	"github.com/levee-dev/levee/adapters/redisdedup"
	"github.com/levee-dev/levee/dedup"
)

func TestNewRejectsANilClient(t *testing.T) {
	if _, err := redisdedup.New(nil, ""); !errors.Is(err, redisdedup.ErrInvalidConfig) {
		t.Errorf("got %v, want ErrInvalidConfig", err)
	}
}

// Every Levee store tells whether an identity is done (the replayer asks).
var _ dedup.DoneChecker = (*redisdedup.Store)(nil)
