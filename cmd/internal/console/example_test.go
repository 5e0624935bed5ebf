package console_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/levee-dev/levee/cmd/internal/console"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

// A console on an in-memory store: a viewer's token reads the groups page,
// and the page shows the letter's group.
func Example() {
	store := dlqops.NewMemStore()
	_, _ = store.Add(context.Background(), dlqtest.Letter("dl-1", "3f9a2c1e8b7d6054", "orders", "ship", 0))
	srv, err := console.New(console.Config{Tokens: []console.Token{{Name: "oncall", Token: "a-long-enough-token", Role: console.RoleViewer}}},
		console.Deps{Store: store, Now: func() time.Time { return dlqtest.Base }})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	for _, auth := range []string{"", "Bearer a-long-enough-token"} {
		req := httptest.NewRequest("GET", "/", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		fmt.Println(rec.Code, strings.Contains(rec.Body.String(), "3f9a2c1e8b7d6054"))
	}
	// Output:
	// 401 false
	// 200 true
}
