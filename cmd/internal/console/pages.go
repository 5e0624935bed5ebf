package console

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
)

// trendHours is how many hours the groups page's trend shows.
const trendHours = 24

// groupSample is how many of its newest letters a group page shows.
const groupSample = 20

// groupsPerPage is how many groups one groups page shows.
const groupsPerPage = 50

// groupRow is a group and its hourly trend.
type groupRow struct {
	dlqops.Group
	Trend []int
	Max   int
}

// groupsPage shows one page of groups: it asks the store for that page
// (after the cursor of the previous page's last group, which the next
// link carries, or at an offset of page) and one group more (is there a
// next page?) and, from a
// dlqops.GroupCounter, how many there are; a store without one shows
// "more follow" instead of a total.
func (s *Server) groupsPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	by, err := dlqops.ParseGroupBy(q.Get("by"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	order, err := dlqops.ParseGroupOrder(q.Get("order"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	after, err := parseGroupCursor(q, order)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	now := s.deps.Now()
	page, _ := strconv.Atoi(q.Get("page"))
	if page = max(0, page); after == nil {
		page = min(page, maxGroupsPage) // an offset: the index is walked to it
	}
	total := -1 // unknown
	if c, ok := s.store.(dlqops.GroupCounter); ok {
		if total, err = c.CountGroups(r.Context(), dlqops.GroupQuery{By: by}); err != nil {
			s.fail(w, r, http.StatusBadGateway, err)
			return
		}
		page = min(page, max(0, (total-1)/groupsPerPage))
	}
	from := page * groupsPerPage
	gq := dlqops.GroupQuery{By: by, Order: order, WindowStart: now.Add(-time.Hour), Offset: from, Limit: groupsPerPage + 1}
	if after != nil {
		gq.Offset, gq.After = 0, after // page only labels it
	}
	groups, err := s.store.Groups(r.Context(), gq)
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	more := len(groups) > groupsPerPage
	groups = groups[:min(len(groups), groupsPerPage)]
	rows, err := s.groupRows(r, by, groups, now)
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	link := func(p int, c *dlqops.GroupCursor) string {
		v := url.Values{"by": {string(by)}, "page": {strconv.Itoa(p)}}
		if order != dlqops.GroupsByCount {
			v.Set("order", string(order))
		}
		setGroupCursor(v, order, c)
		return "/?" + v.Encode()
	}
	data := map[string]any{"Title": "Dead-letter groups", "By": string(by), "Order": string(order), "Groups": rows,
		"From": from + 1, "To": from + len(rows)}
	if total >= 0 {
		data["Total"] = total
	}
	if page > 0 && page-1 <= maxGroupsPage {
		data["Prev"] = link(page-1, nil)
	}
	if more {
		data["Next"] = link(page+1, dlqops.CursorOf(groups[len(groups)-1]))
	}
	s.render(w, r, http.StatusOK, "groups.html", data)
}

// maxGroupsPage bounds the page number of a groups page without a
// cursor (an offset), so a URL cannot make a store skip more than about a
// million groups; the next-page links carry a cursor, which the stores
// seek to, and go on past it.
const maxGroupsPage = 20_000

// groupRows adds each group's trend of the last trendHours hours.
func (s *Server) groupRows(r *http.Request, by dlqops.GroupBy, groups []dlqops.Group, now time.Time) ([]groupRow, error) {
	keys := make([]string, len(groups))
	for i, g := range groups {
		keys[i] = g.Key
	}
	trends, err := s.store.Hourly(r.Context(), dlqops.HourlyQuery{By: by, Keys: keys,
		Since: now.Add(-(trendHours - 1) * time.Hour), Hours: trendHours})
	if err != nil {
		return nil, err
	}
	rows := make([]groupRow, len(groups))
	for i, g := range groups {
		rows[i] = groupRow{Group: g, Trend: trends[g.Key], Max: slices.Max(append([]int{1}, trends[g.Key]...))}
	}
	return rows, nil
}

// errNoKey refuses a group without a key: letters without a topic or a
// handler group under "(none)", but an empty key filters nothing, so its
// page would show, and its canary replay, every letter of the store.
var errNoKey = errBadInput("a group needs a key (letters without a topic or a handler are in their fingerprint's group)")

// groupFilter is the filter of the group named by by and key (not empty:
// errNoKey).
func groupFilter(by dlqops.GroupBy, key string) dlqops.Filter {
	switch by {
	case dlqops.GroupByTopic:
		return dlqops.Filter{Topic: key}
	case dlqops.GroupByHandler:
		return dlqops.Filter{Handler: key}
	}
	return dlqops.Filter{Group: key}
}

func (s *Server) groupPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	by, err := dlqops.ParseGroupBy(q.Get("by"))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	key := q.Get("key")
	if key == "" {
		s.fail(w, r, http.StatusBadRequest, errNoKey)
		return
	}
	f := groupFilter(by, key)
	groups, err := s.store.Groups(r.Context(), dlqops.GroupQuery{By: by, Filter: f, WindowStart: s.deps.Now().Add(-time.Hour)})
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	if len(groups) == 0 {
		s.fail(w, r, http.StatusNotFound, errors.New("no such group"))
		return
	}
	f.Limit = groupSample
	page, err := s.store.Page(r.Context(), dlqops.PageQuery{Filter: f})
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	var stack string
	if len(page.Letters) > 0 {
		stack = stackOf(page.Letters[0].Metadata)
	}
	s.render(w, r, http.StatusOK, "group.html", map[string]any{"Title": "Group " + key, "By": string(by), "Key": key,
		"Group": groups[0], "Letters": page.Letters, "Stack": stack, "Canary": s.cfg.Canary, "Waves": wavesText(s.cfg.Canary.Waves),
		"Runs": s.canaries.forGroup(string(by), key), "Back": "/group?" + url.Values{"by": {string(by)}, "key": {key}}.Encode()})
}

// stackOf returns the panic's stack a letter carries (dlq.KeyStack), ""
// when none.
func stackOf(md map[string]string) string { return md[dlq.KeyStack] }

func wavesText(w []int) string {
	if len(w) == 0 {
		w = dlqops.DefaultCanaryWaves()
	}
	parts := make([]string, len(w))
	for i, n := range w {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

func (s *Server) letterPage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	dl, err := s.store.Get(r.Context(), id)
	if errors.Is(err, dlqops.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, err)
		return
	}
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	lin, err := s.lineage(r, dl)
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	payload, kind, shown := renderPayload(dl.Payload)
	traceID := traceIDOf(dl.Metadata)
	s.render(w, r, http.StatusOK, "letter.html", map[string]any{"Title": "Letter " + dl.ID, "L": dl,
		"Payload": payload, "PayloadKind": kind, "PayloadCut": shown < len(dl.Payload), "Shown": shown, "Meta": sortedMeta(dl.Metadata), "Stack": stackOf(dl.Metadata),
		"CodeLocation": dl.Metadata[dlq.KeyCodeLocation],
		"Events":       lin.events, "Ancestors": lin.ancestors, "Descendants": lin.descendants,
		"TraceID": traceID, "TraceURL": s.traceURL(traceID)})
}

type metaPair struct{ Key, Value string }

func sortedMeta(md map[string]string) []metaPair {
	out := make([]metaPair, 0, len(md))
	for k, v := range md {
		out = append(out, metaPair{k, v})
	}
	slices.SortFunc(out, func(a, b metaPair) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// maxShownPayload bounds the text a letter page shows of a payload: a 10
// MB binary payload was a 60 MB hex dump, seconds to render and more for
// a browser. A hex dump is about four times the bytes it shows.
const maxShownPayload = 1 << 20

// renderPayload returns the payload as text to show: indented JSON, the
// text itself when it is printable UTF-8, else a hex dump; and how many of
// its bytes that shows. Of a payload over maxShownPayload it shows the
// first maxShownPayload bytes as text, or the first quarter of that as hex.
func renderPayload(p []byte) (string, string, int) {
	if len(p) > maxShownPayload {
		n := maxShownPayload
		for i := 0; i < utf8.UTFMax && !utf8.RuneStart(p[n]); i++ {
			n-- // cut at a rune's start, not inside it
		}
		if isText(p[:n]) {
			return string(p[:n]), "text", n
		}
		return hex.Dump(p[:maxShownPayload/4]), "hex", maxShownPayload / 4
	}
	if json.Valid(p) {
		var b bytes.Buffer
		if err := json.Indent(&b, p, "", "  "); err == nil {
			return b.String(), "json", len(p)
		}
	}
	if isText(p) {
		return string(p), "text", len(p)
	}
	return hex.Dump(p), "hex", len(p)
}

// isText reports whether p is UTF-8 without control characters other
// than newline, tab and carriage return: text a page can show, and a
// browser's text area send back, byte for byte.
func isText(p []byte) bool {
	return utf8.Valid(p) && !bytes.ContainsFunc(p, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\t' && r != '\r' })
}

// traceIDOf returns the W3C trace ID of the letter's trace context
// (traceparent, else the replay's original), "" when none is valid.
func traceIDOf(md map[string]string) string {
	for _, k := range []string{"traceparent", levee.KeyOriginalTraceparent} {
		parts := strings.Split(md[k], "-")
		if len(parts) == 4 && len(parts[1]) == 32 && isHex(parts[1]) && strings.Trim(parts[1], "0") != "" {
			return parts[1]
		}
	}
	return ""
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// traceURL fills the trace link template; the ID is hex, and html/template
// checks the URL's scheme again when it renders it.
func (s *Server) traceURL(traceID string) string {
	if traceID == "" || s.cfg.TraceLink == "" {
		return ""
	}
	return strings.ReplaceAll(s.cfg.TraceLink, "{trace_id}", url.PathEscape(traceID))
}
