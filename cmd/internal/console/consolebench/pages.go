package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"time"

	"github.com/levee-dev/levee/cmd/internal/console"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// timePages requests every page runs times and prints the median and the
// slowest.
func timePages(ctx context.Context, store dlqops.Store, now time.Time, runs int) error {
	srv, err := console.New(console.Config{}, console.Deps{Store: store, Now: func() time.Time { return now }})
	if err != nil {
		return err
	}
	defer srv.Close()
	get := func(target string) (string, time.Duration, error) {
		req := httptest.NewRequestWithContext(ctx, "GET", target, nil)
		req.Host = "127.0.0.1" // the console without auth serves a loopback Host only
		rec := httptest.NewRecorder()
		start := time.Now()
		srv.ServeHTTP(rec, req)
		d := time.Since(start)
		if rec.Code != http.StatusOK {
			return "", d, fmt.Errorf("%s: status %d: %.300s", target, rec.Code, rec.Body)
		}
		b, _ := io.ReadAll(rec.Body)
		return string(b), d, nil
	}
	// targets found on the pages themselves
	search, _, err := get("/search?topic=topic-03")
	if err != nil {
		return err
	}
	letter := regexp.MustCompile(`/letter\?id=(dl-[0-9a-f]+)`).FindStringSubmatch(search)
	next := regexp.MustCompile(`id="next" href="([^"]+)"`).FindStringSubmatch(search)
	if letter == nil || next == nil {
		return fmt.Errorf("no letter or next page on the search page")
	}
	pages := []struct{ name, target string }{
		{"groups by fingerprint", "/"},
		{"groups, page 2", "/?by=fingerprint&page=1"},
		{"groups by topic", "/?by=topic"},
		{"groups by handler", "/?by=handler"},
		{"group (largest)", "/group?by=fingerprint&key=" + groupKey(0)},
		{"group (small)", "/group?by=fingerprint&key=" + groupKey(groups-1)},
		{"letter", "/letter?id=" + letter[1]},
		{"search, newest", "/search"},
		{"search by topic, page 2", unescape(next[1])},
		{"search by class", "/search?class=panic"},
		{"search by error text", "/search?text=" + url.QueryEscape("order 4242")},
		{"search by text, rare", "/search?text=" + url.QueryEscape("order 999999:")},
		{"search by handler and time", "/search?handler=handler-07&since=" + url.QueryEscape(now.Add(-48*time.Hour).Format(time.RFC3339)) + "&until=" + url.QueryEscape(now.Add(-24*time.Hour).Format(time.RFC3339))},
		{"archive", "/search?status=archived"},
	}
	fmt.Printf("%-30s %10s %10s\n", "page", "median", "max")
	for _, p := range pages {
		var ds []time.Duration
		for range runs {
			_, d, err := get(p.target)
			if err != nil {
				return err
			}
			ds = append(ds, d)
		}
		slices.Sort(ds)
		fmt.Printf("%-30s %10s %10s\n", p.name, ds[len(ds)/2].Round(100*time.Microsecond), ds[len(ds)-1].Round(100*time.Microsecond))
	}
	return nil
}

var ampRe = regexp.MustCompile(`&amp;`)

func unescape(s string) string { return ampRe.ReplaceAllString(s, "&") }
