package config_test

import (
	"fmt"

	"github.com/levee-dev/levee/internal/config"
)

func ExampleParseRate() {
	for _, s := range []string{"200/s", "5/min", "3/250ms", "-1/s"} {
		r, err := config.ParseRate(s)
		fmt.Println(r, err)
	}
	// Output:
	// 200 <nil>
	// 0.08333333333333333 <nil>
	// 12 <nil>
	// 0 "-1/s" is negative; rates must be 0 or more
}

func ExampleRaw_Decode() {
	doc, _ := config.Parse("levee.yaml", []byte("limits:\n  rate: 50/s\n  wait: 2x\n"), nil)
	var c struct {
		Limits struct {
			Rate float64 `yaml:"rate" levee:"rate"`
			Wait string  `yaml:"wait"`
		} `yaml:"limits"`
	}
	fmt.Println(doc.Decode(&c), c.Limits.Rate)

	var strict struct {
		Limits struct {
			Rate float64 `yaml:"rate" levee:"rate"`
		} `yaml:"limits"`
	}
	fmt.Println(doc.Decode(&strict))
	// Output:
	// <nil> 50
	// levee.yaml:3: limits.wait: unknown key "wait" (known keys: rate)
}
