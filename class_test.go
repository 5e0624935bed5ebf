package levee_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/levee-dev/levee"
)

type classed string

func (c classed) Error() string      { return "classed " + string(c) }
func (c classed) ErrorClass() string { return string(c) }

func TestClassOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want levee.Class
	}{
		{"nil", nil, ""},
		{"plain", errors.New("x"), levee.ClassTransient},
		{"declared", fmt.Errorf("w: %w", classed("permanent")), levee.ClassPermanent},
		{"empty is transient", classed(""), levee.ClassTransient},
		{"unknown kept", classed("odd"), "odd"},
		{"outermost wins", fmt.Errorf("%w", classed("validation")), levee.ClassValidation},
		{"panic", &levee.PanicError{Value: "x"}, levee.ClassPanic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := levee.ClassOf(tt.err); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	if levee.Class("odd").Known() || !levee.ClassExhausted.Known() {
		t.Fatal("Known: wrong answer")
	}
}

func TestPanicError(t *testing.T) {
	cause := errors.New("db down")
	err := fmt.Errorf("wrapped: %w", &levee.PanicError{Value: cause, Stack: []byte("stack")})
	if !levee.IsPanic(err) || !errors.Is(err, cause) {
		t.Fatalf("IsPanic/Is: got false for %v", err)
	}
	if got, want := (&levee.PanicError{Value: "boom"}).Error(), "levee: panic: boom"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if levee.IsPanic(errors.New("x")) || levee.IsPanic(nil) {
		t.Fatal("IsPanic: got true for a plain error")
	}
	// A panic class under an outer class still counts.
	if !levee.IsPanic(fmt.Errorf("%w", classed("panic"))) {
		t.Fatal("IsPanic: got false for an error declaring class panic")
	}
}

func TestInvalidConfigSentinel(t *testing.T) {
	s := levee.InvalidConfigSentinel("levee/x: invalid configuration")
	err := fmt.Errorf("%w: rate must be positive", s)
	if !errors.Is(err, s) || !errors.Is(err, levee.ErrInvalidConfig) {
		t.Fatalf("errors.Is: got false for %v", err)
	}
	if other := levee.InvalidConfigSentinel("levee/y: invalid configuration"); errors.Is(err, other) {
		t.Fatal("two packages' sentinels match each other")
	}
	if s.Error() != "levee/x: invalid configuration" {
		t.Fatalf("Error() = %q", s.Error())
	}
}
