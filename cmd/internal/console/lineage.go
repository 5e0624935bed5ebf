package console

import (
	"net/http"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// maxLineage bounds the ancestors a letter page follows.
const maxLineage = 20

// shownEvents bounds the events a letter page shows (the newest).
const shownEvents = 100

// descendantScan bounds the letters of its topic a letter page reads to
// find the re-dead-letters of its replays (the oldest since its replay).
const descendantScan = 1000

// link is a letter in another's lineage. Verified says the store backs the
// link (dlqops.VerifiedReplay); an unverified one is a claim the letter's
// message made in its metadata, which a producer can write: the page shows
// it as such and follows it no further.
type link struct {
	dlqops.Record
	Verified bool
}

// lineage is what a letter page shows of a letter's lineage.
type lineage struct {
	ancestors   []link // its parent first; the last may be unverified
	events      []dlqops.Event
	descendants []link // re-dead-letters of its replays, and claims
}

// lineage reads dl's lineage: the letters it replays, up to maxLineage,
// followed while each link is verified; its newest events; and the letters
// that claim to replay it.
func (s *Server) lineage(r *http.Request, dl dlqops.Record) (lineage, error) {
	var out lineage
	events, err := s.store.Events(r.Context(), dl.ID, dlqops.MaxEvents)
	if err != nil {
		return out, err
	}
	out.events = events[max(0, len(events)-shownEvents):]
	for cur := dl; len(out.ancestors) < maxLineage; {
		claim := dlqops.ClaimedParent(cur)
		if claim == "" {
			break
		}
		p, err := s.store.Get(r.Context(), claim)
		if err != nil {
			// pruned, or garbage: the claim cannot be checked
			out.ancestors = append(out.ancestors, link{Record: dlqops.Record{ID: claim}})
			break
		}
		pev, err := s.store.Events(r.Context(), p.ID, dlqops.MaxEvents)
		if err != nil {
			return out, err
		}
		ok := dlqops.VerifiedReplay(p, pev, cur)
		out.ancestors = append(out.ancestors, link{Record: p, Verified: ok})
		if !ok {
			break
		}
		cur = p
	}
	out.descendants, err = s.descendants(r, dl, events)
	return out, err
}

// descendants finds the letters of dl's topic since its first replay whose
// dlqops.ClaimedParent is dl (among the first descendantScan letters, oldest first), each
// verified against dl and its events: the re-dead-letters of its replays,
// and claims a producer made.
func (s *Server) descendants(r *http.Request, dl dlqops.Record, events []dlqops.Event) ([]link, error) {
	since := dl.ReplayedAt
	if since.IsZero() || dl.OriginalTopic == "" {
		return nil, nil
	}
	letters, err := s.store.List(r.Context(), dlqops.Filter{Topic: dl.OriginalTopic, Since: since.Add(-time.Minute), Limit: descendantScan})
	if err != nil {
		return nil, err
	}
	var out []link
	for _, l := range letters {
		if dlqops.ClaimedParent(l) == dl.ID {
			out = append(out, link{Record: l, Verified: dlqops.VerifiedReplay(dl, events, l)})
		}
	}
	return out, nil
}
