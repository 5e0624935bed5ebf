package pgstore_test

import (
	"context"
	"fmt"

	"github.com/levee-dev/levee/adapters/pgstore"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// The embedded, versioned migrations that Open and Migrate apply.
func ExampleMigrations() {
	migs, err := pgstore.Migrations()
	if err != nil {
		panic(err)
	}
	for _, m := range migs {
		fmt.Println(m.Version, m.Name)
	}
	// Output:
	// 1 0001_init.sql
	// 2 0002_attempts.sql
	// 3 0003_truncated.sql
	// 4 0004_console.sql
	// 5 0005_group_counts.sql
	// 6 0006_group_totals.sql
}

// A `store: {kind: memory}` section builds the in-memory store; kind
// postgres opens (and migrates) the database at store.url.
func ExampleFromConfig() {
	s, closeStore, err := pgstore.FromConfig(context.Background(), dlqops.StoreConfig{Kind: dlqops.StoreKindMemory})
	if err != nil {
		panic(err)
	}
	defer closeStore()
	fmt.Printf("%T\n", s)
	// Output:
	// *dlqops.MemStore
}
