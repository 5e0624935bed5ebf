package redisdedup_test

import (
	"errors"
	"testing"

	"github.com/levee-dev/levee/adapters/redisdedup"
)

func TestNewRejectsANilClient(t *testing.T) {
	if _, err := redisdedup.New(nil, ""); !errors.Is(err, redisdedup.ErrInvalidConfig) {
		t.Errorf("got %v, want ErrInvalidConfig", err)
	}
}
