package console

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

// queryRecorder is a dlqops.Browser that is no dlqops.GroupCounter (it
// hides the MemStore's CountGroups) and records what Groups is asked and
// returns.
type queryRecorder struct {
	dlqops.Browser
	mu       sync.Mutex
	queries  []dlqops.GroupQuery // guarded by mu
	returned []int               // guarded by mu
}

func (r *queryRecorder) Groups(ctx context.Context, q dlqops.GroupQuery) ([]dlqops.Group, error) {
	gs, err := r.Browser.Groups(ctx, q)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queries = append(r.queries, q)
	r.returned = append(r.returned, len(gs))
	return gs, err
}

func (r *queryRecorder) last() (dlqops.GroupQuery, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.queries[len(r.queries)-1], r.returned[len(r.returned)-1]
}

// manyGroups adds n groups (grp-000 has the most letters, grp-(n-1) the
// newest) to the fixture's store, which holds two groups already.
func manyGroups(t *testing.T, f *fixture, n int) {
	t.Helper()
	var letters []dlqops.Record
	for i := range n {
		letters = append(letters, dlqtest.Letter(fmt.Sprintf("p%d", i), fmt.Sprintf("grp-%03d", i), "orders", "ship", time.Duration(i)*time.Second))
	}
	for i := range 8 {
		letters = append(letters, dlqtest.Letter(fmt.Sprintf("q%d", i), "grp-000", "orders", "ship", -time.Hour))
	}
	if _, err := f.store.Add(context.Background(), letters...); err != nil {
		t.Fatal(err)
	}
}

// TestGroupsPageAsksForWhatItShows: with a store that cannot count its
// groups, each groups page asks the store for its 50 groups and one more
// (is there a next page?), no group before or after, and says "more
// follow" instead of a total.
func TestGroupsPageAsksForWhatItShows(t *testing.T) {
	f := newFixture(t)
	manyGroups(t, f, 118) // 120 with the fixture's two
	rec := &queryRecorder{Browser: f.store}
	srv, err := New(f.srv.cfg, Deps{Store: rec, Publisher: f.down})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	f.srv = srv
	tests := []struct {
		target     string
		offset     int
		returned   int
		text, next string
		rows       int
	}{
		{"/", 0, 51, "groups 1 to 50, more follow", `&amp;by=fingerprint&amp;page=1"`, 50},
		{"/?page=1", 50, 51, "groups 51 to 100, more follow", `&amp;by=fingerprint&amp;page=2"`, 50},
		{"/?page=2", 100, 20, "groups 101 to 120,", "", 20},
		{"/?page=3", 150, 0, "no groups on this page", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			resp := f.do("GET", tt.target, "alice", nil)
			body := resp.Body.String()
			if resp.Code != http.StatusOK {
				t.Fatalf("status %d: %s", resp.Code, body)
			}
			q, n := rec.last()
			if q.Limit != groupsPerPage+1 || q.Offset != tt.offset || n != tt.returned {
				t.Errorf("asked for limit %d offset %d, got %d groups; want limit %d offset %d, %d groups",
					q.Limit, q.Offset, n, groupsPerPage+1, tt.offset, tt.returned)
			}
			if !strings.Contains(body, tt.text) {
				t.Errorf("page lacks %q", tt.text)
			}
			if strings.Contains(body, " of 1") {
				t.Errorf("page states a total the store did not count")
			}
			if hasNext := strings.Contains(body, "next groups"); hasNext != (tt.next != "") || !strings.Contains(body, tt.next) {
				t.Errorf("next link: got %v want %q", hasNext, tt.next)
			}
			if rows := strings.Count(body, `class="group"`); rows != tt.rows {
				t.Errorf("shows %d groups want %d", rows, tt.rows)
			}
		})
	}
}

// TestGroupsPageOrders: largest first by default, newest first on
// request (its links keep the order), with the total from the store's
// counter; an unknown order is refused.
func TestGroupsPageOrders(t *testing.T) {
	f := newFixture(t)
	manyGroups(t, f, 58) // 60 with the fixture's two
	firstRow := func(body string) string {
		_, after, _ := strings.Cut(body, `class="group" href="/group?by=fingerprint&amp;key=`)
		key, _, _ := strings.Cut(after, `"`)
		return key
	}
	largest := f.do("GET", "/", "alice", nil).Body.String()
	if got := firstRow(largest); got != "grp-000" || !strings.Contains(largest, "groups 1 to 50 of 60") {
		t.Errorf("largest first: first group %q, or no total of 60", got)
	}
	newest := f.do("GET", "/?order=newest", "alice", nil).Body.String()
	// the fixture's hostile group (10 min) and g1 (4 min), then grp-057
	// (57 s) down to grp-000
	if i, j := strings.Index(newest, "key=g1\""), strings.Index(newest, "key=grp-057\""); i < 0 || j < i || firstRow(newest) == "grp-000" {
		t.Errorf("newest first: g1 at %d, grp-057 at %d, first group %q", i, j, firstRow(newest))
	}
	if !strings.Contains(newest, `&amp;by=fingerprint&amp;order=newest&amp;page=1"`) || !strings.Contains(newest, `href="/?after=2026-`) ||
		!strings.Contains(newest, `href="/?by=topic&amp;order=newest"`) {
		t.Errorf("newest first: links lose the order")
	}
	second := f.do("GET", "/?order=newest&page=1", "alice", nil).Body.String()
	if got := firstRow(second); got != "grp-009" || !strings.Contains(second, "groups 51 to 60 of 60") {
		t.Errorf("newest first, page 2: first group %q want grp-009", got)
	}
	if code := f.do("GET", "/?order=oldest", "alice", nil).Code; code != http.StatusBadRequest {
		t.Errorf("unknown order: status %d want 400", code)
	}
}

// TestGroupsPageFollowsCursors: a next link carries the cursor of the
// page's last group, and the page it opens asks the store for the groups
// after it (no offset), whatever its page number, even past the last one
// a page number alone reaches; the pages walk the groups the offset pages
// show. A malformed cursor is refused.
func TestGroupsPageFollowsCursors(t *testing.T) {
	f := newFixture(t)
	manyGroups(t, f, 118) // 120 with the fixture's two
	rec := &queryRecorder{Browser: f.store}
	srv, err := New(f.srv.cfg, Deps{Store: rec, Publisher: f.down})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	f.srv = srv
	rows := func(body string) []string {
		var keys []string
		for _, part := range strings.Split(body, `class="group" href="/group?by=fingerprint&amp;key=`)[1:] {
			key, _, _ := strings.Cut(part, `"`)
			keys = append(keys, key)
		}
		return keys
	}
	for _, order := range []string{"", "newest"} {
		var byOffset, byCursor []string
		for page := range 3 {
			byOffset = append(byOffset, rows(f.do("GET", fmt.Sprintf("/?order=%s&page=%d", order, page), "alice", nil).Body.String())...)
		}
		target := "/?order=" + order
		for range 4 {
			body := f.do("GET", target, "alice", nil).Body.String()
			byCursor = append(byCursor, rows(body)...)
			_, next, ok := strings.Cut(body, `id="next" href="`)
			if !ok {
				break
			}
			next, _, _ = strings.Cut(next, `"`)
			target = strings.ReplaceAll(next, "&amp;", "&")
			if !strings.Contains(target, "after=") || !strings.Contains(target, "after_key=") {
				t.Fatalf("order %q: next link %q has no cursor", order, target)
			}
		}
		if q, _ := rec.last(); q.After == nil || q.Offset != 0 {
			t.Errorf("order %q: the last page asked for offset %d after %v, want a cursor and no offset", order, q.Offset, q.After)
		}
		if len(byOffset) != 120 || strings.Join(byCursor, ",") != strings.Join(byOffset, ",") {
			t.Errorf("order %q: pages after cursors show %d groups %q, want the offset pages' %d %q",
				order, len(byCursor), byCursor, len(byOffset), byOffset)
		}
	}
	deep := f.do("GET", fmt.Sprintf("/?after=1&after_key=grp-050&page=%d", maxGroupsPage+5), "alice", nil)
	body := deep.Body.String()
	if q, _ := rec.last(); deep.Code != http.StatusOK || q.After == nil || q.After.Key != "grp-050" || q.Offset != 0 {
		t.Errorf("page %d after a cursor: status %d, asked for offset %d after %+v", maxGroupsPage+5, deep.Code, q.Offset, q.After)
	}
	if want := fmt.Sprintf("groups %d to", (maxGroupsPage+5)*groupsPerPage+1); !strings.Contains(body, want) ||
		!strings.Contains(body, fmt.Sprintf("page=%d", maxGroupsPage+6)) || strings.Contains(body, "previous groups") {
		t.Errorf("page %d after a cursor: want %q, a next link and no previous link (no offset reaches it)", maxGroupsPage+5, want)
	}
	for _, target := range []string{"/?after=x", "/?after=-1", "/?order=newest&after=2026"} {
		if code := f.do("GET", target, "alice", nil).Code; code != http.StatusBadRequest {
			t.Errorf("%s: status %d want 400", target, code)
		}
	}
}
