package validate

import (
	"bytes"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestNumberWalkDoesNotAllocate: the number check costs a valid payload a
// walk of its decoded values and no allocation (the path is built only
// for a violation).
func TestNumberWalkDoesNotAllocate(t *testing.T) {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(`{"a":[1,2.5,-3e10,{"b":4,"c":[5,"x",null,true]}],"d":{"e":6}}`)))
	if err != nil {
		t.Fatal(err)
	}
	var bad *Violation
	if n := testing.AllocsPerRun(100, func() { bad = numberViolation(inst) }); n != 0 || bad != nil {
		t.Fatalf("got %v allocations and %v, want 0 and nil", n, bad)
	}
}
