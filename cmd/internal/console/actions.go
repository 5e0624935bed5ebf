package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/levee-dev/levee/dlq/dlqops"
)

// maxIDs bounds the letters one archive or restore names.
const maxIDs = 500

// eventTimeout bounds the recording of a replay's events after its
// request ended.
const eventTimeout = 10 * time.Second

// archiveOrRestore moves the letters named by the form's ids (at most
// maxIDs) from one status to another, and records it.
func (s *Server) archiveOrRestore(w http.ResponseWriter, r *http.Request, from, to dlqops.Status, action string) {
	ids := r.PostForm["id"]
	if len(ids) == 0 || len(ids) > maxIDs {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("levee/console: name 1 to %d letters", maxIDs))
		return
	}
	// the letters in the from status are the ones that change (a claimed
	// one excepted, which SetStatus skips)
	letters, err := s.store.List(r.Context(), dlqops.Filter{IDs: ids, Statuses: []dlqops.Status{from}})
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	changing := make([]string, len(letters))
	for i, dl := range letters {
		changing[i] = dl.ID
	}
	n := 0
	if len(changing) > 0 {
		if n, err = s.store.SetStatus(r.Context(), dlqops.Filter{IDs: changing, Statuses: []dlqops.Status{from}}, to); err != nil {
			s.fail(w, r, http.StatusBadGateway, err)
			return
		}
	}
	s.audit(r, action, map[string]any{"ids": changing, "asked": len(ids), "changed": n})
	if err := s.event(r.Context(), r, action, fmt.Sprintf("%s -> %s", from, to), "", changing...); err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	http.Redirect(w, r, localPath(r.PostFormValue("back")), http.StatusSeeOther)
}

// localPath returns back when it is a path of the console, else "/". A
// browser reads "//host", "/\host" and "/<tab>/host" (it drops tabs and
// newlines, and takes '\' for '/') as another host, so a back starting
// "//", or with a backslash or a control character anywhere, is refused.
func localPath(back string) string {
	if !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") ||
		strings.ContainsFunc(back, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
		return "/"
	}
	return back
}

func (s *Server) archive(w http.ResponseWriter, r *http.Request) {
	s.archiveOrRestore(w, r, dlqops.StatusNew, dlqops.StatusArchived, dlqops.EventArchived)
}

func (s *Server) restore(w http.ResponseWriter, r *http.Request) {
	s.archiveOrRestore(w, r, dlqops.StatusArchived, dlqops.StatusNew, dlqops.EventRestored)
}

// replayer builds a replayer for one action.
func (s *Server) replayer(rate float64) (*dlqops.Replayer, error) {
	if s.deps.Publisher == nil {
		return nil, errors.New("levee/console: no transport configured: replays are off")
	}
	return dlqops.NewReplayer(s.store, s.deps.Publisher, dlqops.WithReplayRate(rate),
		dlqops.WithReplayValidator(s.deps.Validator), dlqops.WithReplayTopics(s.deps.ReplayTopics...),
		dlqops.WithClock(s.deps.Now))
}

func (s *Server) replayOne(w http.ResponseWriter, r *http.Request) {
	id := r.PostFormValue("id")
	rp, err := s.replayer(0)
	if err != nil {
		s.fail(w, r, http.StatusConflict, err)
		return
	}
	rep, err := rp.Replay(r.Context(), dlqops.ReplaySelection{Filter: dlqops.Filter{IDs: []string{id}}})
	s.audit(r, dlqops.EventReplayed, map[string]any{"id": id, "replayed": rep.Replayed, "held": rep.Held, "error": errText(err)})
	// What the run did goes into the lineage even when it stopped, or the
	// request ended (the browser went away) while the replay was published.
	ectx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), eventTimeout)
	defer cancel()
	for _, it := range rep.Items {
		action, detail := dlqops.EventReplayed, "replayed from the console"
		switch it.Outcome {
		case dlqops.OutcomeReplayed:
		case dlqops.OutcomeHeld:
			action, detail = dlqops.EventHeld, it.Reason
		default:
			continue // a failed publish: the letter keeps its reason
		}
		if eerr := s.event(ectx, r, action, detail, it.ReplayUUID, it.ID); eerr != nil && err == nil {
			err = eerr
		}
	}
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	if len(rep.Items) == 0 {
		// Nothing was claimed: say so rather than show the letter as if
		// the replay had gone out.
		s.fail(w, r, http.StatusConflict, fmt.Errorf("nothing replayed: letter %q is not new (already replayed or archived), or another replay holds it now", id))
		return
	}
	http.Redirect(w, r, "/letter?id="+url.QueryEscape(id), http.StatusSeeOther)
}

func (s *Server) editPage(w http.ResponseWriter, r *http.Request) {
	dl, err := s.store.Get(r.Context(), r.URL.Query().Get("id"))
	if err != nil {
		s.fail(w, r, http.StatusNotFound, err)
		return
	}
	s.render(w, r, http.StatusOK, "edit.html", map[string]any{"Title": "Edit and retry " + dl.ID, "L": dl, "Payload": string(dl.Payload),
		"Binary": !isText(dl.Payload), "TooLarge": !sendable(dl.Payload), "MaxForm": maxForm >> 20})
}

// formSlack is room in maxForm for the edit form's other fields and its
// multipart framing.
const formSlack = 16 << 10

// sendable reports whether a browser can send p back in the edit form
// (multipart, each newline as CRLF) within maxForm.
func sendable(p []byte) bool {
	return len(p)+bytes.Count(p, []byte{'\n'})+formSlack <= maxForm
}

// edit validates the edited payload against the topic's schema (through
// the replayer's validator) and publishes it; the stored letter keeps its
// payload and the edit goes into its events.
func (s *Server) edit(w http.ResponseWriter, r *http.Request) {
	id, payload := r.PostFormValue("id"), r.PostFormValue("payload")
	// a browser sends a text area's newlines as CRLF
	if dl, err := s.store.Get(r.Context(), id); err == nil && !bytes.Contains(dl.Payload, []byte{'\r'}) {
		payload = strings.ReplaceAll(payload, "\r\n", "\n")
	}
	rp, err := s.replayer(0)
	if err != nil {
		s.fail(w, r, http.StatusConflict, err)
		return
	}
	it, err := rp.ReplayEdited(r.Context(), id, []byte(payload), who(r).Name)
	s.audit(r, dlqops.EventEdited, map[string]any{"id": id, "bytes": len(payload), "replay_uuid": it.ReplayUUID, "error": errText(err)})
	if err != nil {
		dl, gerr := s.store.Get(r.Context(), id)
		if gerr != nil {
			s.fail(w, r, http.StatusNotFound, gerr)
			return
		}
		s.render(w, r, http.StatusUnprocessableEntity, "edit.html", map[string]any{"Title": "Edit and retry " + id, "L": dl,
			"Payload": payload, "Error": err.Error()})
		return
	}
	http.Redirect(w, r, "/letter?id="+url.QueryEscape(id), http.StatusSeeOther)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
