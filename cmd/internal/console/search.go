package console

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// searchForm is the search page's form, as the query string carries it.
type searchForm struct {
	Topic, Handler, Group, Class, Text, Status, Since, Until string
}

func (s *Server) searchPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	form := searchForm{Topic: q.Get("topic"), Handler: q.Get("handler"), Group: q.Get("group"), Class: q.Get("class"),
		Text: q.Get("text"), Status: q.Get("status"), Since: q.Get("since"), Until: q.Get("until")}
	pq, err := form.query()
	if err == nil {
		pq.Before, err = parseCursor(q.Get("before_at"), q.Get("before_id"))
	}
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	start := time.Now()
	page, err := s.store.Page(r.Context(), pq)
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	var next string
	if page.Next != nil {
		v := form.values()
		v.Set("before_at", page.Next.At.Format(time.RFC3339Nano))
		v.Set("before_id", page.Next.ID)
		next = "/search?" + v.Encode()
	}
	title := "Search"
	if form.Status == string(dlqops.StatusArchived) {
		title = "Archive"
	}
	s.render(w, r, http.StatusOK, "search.html", map[string]any{"Title": title, "F": form, "Letters": page.Letters,
		"Next": next, "Partial": page.Partial, "Took": time.Since(start).Round(100 * time.Microsecond),
		"Archived": form.Status == string(dlqops.StatusArchived)})
}

func (f searchForm) values() url.Values {
	v := url.Values{}
	for k, x := range map[string]string{"topic": f.Topic, "handler": f.Handler, "group": f.Group, "class": f.Class,
		"text": f.Text, "status": f.Status, "since": f.Since, "until": f.Until} {
		if x != "" {
			v.Set(k, x)
		}
	}
	return v
}

// query turns the form into a page query; times are RFC 3339 or the
// browser's datetime-local (UTC).
func (f searchForm) query() (dlqops.PageQuery, error) {
	pq := dlqops.PageQuery{Filter: dlqops.Filter{Topic: f.Topic, Handler: f.Handler, Group: f.Group}, Class: f.Class, Text: f.Text}
	if f.Status != "" {
		st, err := dlqops.ParseStatus(f.Status)
		if err != nil {
			return pq, err
		}
		pq.Filter.Statuses = []dlqops.Status{st}
	}
	var err error
	if pq.Filter.Since, err = parseFormTime(f.Since); err != nil {
		return pq, err
	}
	if pq.Filter.Until, err = parseFormTime(f.Until); err != nil {
		return pq, err
	}
	return pq, pq.Validate()
}

func parseFormTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errBadInput("time " + strconv.Quote(v) + ": want RFC 3339 or 2006-01-02T15:04 (UTC)")
}

func parseCursor(at, id string) (*dlqops.Cursor, error) {
	if at == "" && id == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return nil, errBadInput("page cursor: " + err.Error())
	}
	return &dlqops.Cursor{At: t, ID: id}, nil
}

// errBadInput is a request the console cannot serve.
type errBadInput string

func (e errBadInput) Error() string { return "levee/console: " + string(e) }
