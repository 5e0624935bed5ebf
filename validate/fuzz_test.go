package validate_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/levee-dev/levee/validate"
)

// fuzzSchemas cover every keyword family a payload can reach: strings and
// patterns ($ref included), numbers (minimum, multipleOf, integer), arrays,
// objects, enum and const.
var fuzzSchemas = map[string][]byte{
	"num": []byte(`{"type":"object","properties":{
		"n":{"type":"number","minimum":0,"maximum":1e9,"exclusiveMinimum":-1,"exclusiveMaximum":2e9,"multipleOf":0.5},
		"i":{"type":"integer"},
		"e":{"enum":[1,"a",null,[1],{"a":1}]},
		"c":{"const":1.5},
		"a":{"type":"array","items":{"type":"number","minimum":0},"maxItems":5,"uniqueItems":true},
		"s":{"type":"string","pattern":"^[a-z]+$","maxLength":8}},
		"additionalProperties":{"type":"integer"}}`),
	"any": []byte(`{}`),
}

// FuzzValidate feeds arbitrary payloads to every schema: the result is nil
// or a *Error wrapping ErrInvalidMessage with at least one violation and a
// bounded message, never a panic. A payload that is not JSON is invalid
// even for the schema that accepts everything.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{
		`{"n":1,"i":2,"e":"a","c":1.5,"a":[1,2],"s":"ab"}`,
		`{"n":-1,"i":1.5,"e":2,"c":1,"a":[1,1],"s":"AB","x":"y"}`,
		`{"n":1e1000000}`, `{"n":1e1000001}`, `{"i":1e-1000001}`, `{"a":[1e999999999]}`, `{"c":1e1000001}`,
		`{"e":1e1000001}`, `{"x":-1e1000001}`, `{"n":0.5e-1000001}`,
		`[` + strings.Repeat(`[`, 100) + `]`, `{"s":"` + strings.Repeat("é", 20) + `"}`,
		``, `{`, `{} {}`, "\xff", `null`, `1e1000001`,
	} {
		f.Add(s)
	}
	r, err := validate.Compile(fuzzSchemas)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		for _, topic := range r.Topics() {
			err := r.Validate(topic, []byte(payload))
			if err == nil {
				continue
			}
			var ve *validate.Error
			if !errors.As(err, &ve) || !errors.Is(err, validate.ErrInvalidMessage) {
				t.Fatalf("%s: got %T %v, want *validate.Error", topic, err, err)
			}
			if len(ve.Violations) == 0 {
				t.Fatalf("%s: an invalid payload without violations", topic)
			}
			if n, limit := len(err.Error()), 11*(len(payload)+2048); n > limit {
				t.Fatalf("%s: error of %d bytes for a payload of %d", topic, n, len(payload))
			}
		}
	})
}
