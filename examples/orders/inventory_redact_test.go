package main

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestPostgresFlagHidesThePassword: -postgres errors (a URL that does not
// parse, a server that does not answer) never print the password.
func TestPostgresFlagHidesThePassword(t *testing.T) {
	for _, pw := range []string{"Sekr%zzit", "Sekr/it", "Sekr#it", "Sekr@it", url.QueryEscape("Sekr%zz/#@it")} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		sink, err := newPGSink(ctx, "postgres://levee_user:"+pw+"@127.0.0.1:1/test?connect_timeout=2", NewInventory())
		cancel()
		if err == nil {
			sink.Close()
			t.Fatalf("%s: no error against 127.0.0.1:1", pw)
		}
		if strings.Contains(err.Error(), "Sekr") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}
