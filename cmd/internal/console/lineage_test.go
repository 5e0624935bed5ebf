package console

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	"github.com/levee-dev/levee/dlq/dlqtest"
)

// lineageRow returns the lineage row of a letter page that links to id.
func lineageRow(t *testing.T, body, id string) string {
	t.Helper()
	for _, row := range regexp.MustCompile(`(?s)<tr[^>]*>.*?</tr>`).FindAllString(body, -1) {
		if strings.Contains(row, `href="/letter?id=`+id+`"`) {
			return row
		}
	}
	return ""
}

// TestForgedReplayOfIsShownUnverified: a producer that writes
// levee_replay_of on its own message made the letter page show that
// message's dead letter as a replay of the letter it named, and the named
// letter show it as its replay dead-lettered again. Only a letter whose
// UUID a replay of the parent published is now shown as its lineage; a
// claim is shown as an unverified claim and is not followed.
func TestForgedReplayOfIsShownUnverified(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok := f.csrf("alice")
	if rec := f.do("POST", "/replay", "alice", url.Values{"id": {"La"}, "csrf": {tok}}); rec.Code != 303 {
		t.Fatalf("replay: got %d %s", rec.Code, rec.Body)
	}
	la, err := f.store.Get(ctx, "La")
	if err != nil || la.ReplayUUID == "" {
		t.Fatalf("replayed letter: %+v %v", la, err)
	}
	all, err := f.store.List(ctx, dlqops.Filter{Topic: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	var child dlqops.Record
	for _, l := range all {
		if l.UUID == la.ReplayUUID {
			child = l
		}
	}
	if child.ID == "" {
		t.Fatal("the replay was not dead-lettered again")
	}
	forged := dlqtest.Letter("forged", "g2", "orders", "ship", 0)
	forged.FailedAt = time.Now()
	forged.Metadata[dlq.KeyReplayOf] = "La"
	orphan := dlqtest.Letter("orphan", "g2", "orders", "ship", 0)
	orphan.Metadata[dlq.KeyReplayOf] = "no-such-letter"
	if _, err := f.store.Add(ctx, forged, orphan); err != nil {
		t.Fatal(err)
	}

	parent := f.do("GET", "/letter?id=La", "alice", nil).Body.String()
	if row := lineageRow(t, parent, child.ID); !strings.Contains(row, "dead-lettered again") {
		t.Errorf("La's page, its replay's dead letter: got row %q, want dead-lettered again", row)
	}
	if row := lineageRow(t, parent, "forged"); strings.Contains(row, "dead-lettered again") || !strings.Contains(row, "unverified") {
		t.Errorf("La's page, the forged claim: got row %q, want an unverified claim", row)
	}
	if row := lineageRow(t, f.do("GET", "/letter?id="+child.ID, "alice", nil).Body.String(), "La"); !strings.Contains(row, "<td>replay of</td>") || strings.Contains(row, "unverified") {
		t.Errorf("the replay's page: got row %q, want a replay of La", row)
	}
	for id, parent := range map[string]string{"forged": "La", "orphan": "no-such-letter"} {
		row := lineageRow(t, f.do("GET", "/letter?id="+id, "alice", nil).Body.String(), parent)
		if strings.Contains(row, "<td>replay of</td>") || !strings.Contains(row, "claims to replay") || !strings.Contains(row, "unverified") {
			t.Errorf("%s's page: got row %q, want an unverified claim to replay %s", id, row, parent)
		}
	}
}
