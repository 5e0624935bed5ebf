package dlqstore_test

import (
	"context"
	"fmt"

	"github.com/levee-dev/levee/adapters/dlqstore"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// No kind is the in-memory store; a redis or postgres section is checked
// before anything is dialled.
func ExampleFromConfig() {
	ctx := context.Background()
	s, closeStore, err := dlqstore.FromConfig(ctx, dlqops.StoreConfig{})
	if err != nil {
		panic(err)
	}
	defer closeStore()
	fmt.Printf("%T\n", s)

	_, _, err = dlqstore.FromConfig(ctx, dlqops.StoreConfig{Kind: dlqops.StoreKindRedis})
	fmt.Println(err)
	// Output:
	// *dlqops.MemStore
	// levee/dlqstore: store: url: levee/dlqops: invalid configuration: a redis store needs a url (redis://host:6379/0)
}
