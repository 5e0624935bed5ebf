package fleetredis_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/levee-dev/levee/adapters/fleetredis"
)

// Open checks the URL before dialing; its errors never carry a password.
func ExampleOpen() {
	_, err := fleetredis.Open(context.Background(), "http://user:secret@127.0.0.1:6379", "", 0)
	fmt.Println(errors.Is(err, fleetredis.ErrInvalidConfig))
	// Output:
	// true
}
