package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/levee-dev/levee/dlq/dlqops"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Deps are what a Server works with besides its Config.
type Deps struct {
	// Store is the dead-letter store; it must be a dlqops.Browser.
	Store dlqops.Store
	// Publisher publishes replays; nil disables every replay action.
	Publisher message.Publisher
	// Validator re-validates payloads (the `schemas:` section) before a
	// replay or an edit; nil means none.
	Validator dlqops.Validator
	// ReplayTopics are the topics replays may publish to (see
	// dlqops.WithReplayTopics); empty means the default pairing.
	ReplayTopics []string
	// Audit receives the audit log, one JSON object a line; nil discards.
	Audit io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is the dead-letter console: an http.Handler. It is safe for
// concurrent use; Close stops running canary replays.
type Server struct {
	cfg     Config
	deps    Deps
	store   dlqops.Browser
	tpl     *template.Template
	csrfKey []byte
	handler http.Handler

	auditMu sync.Mutex // guards writes to deps.Audit

	canaries *canaries
	throttle *throttle
}

// New returns a Server. It returns an error wrapping ErrInvalidConfig when
// the store is not a dlqops.Browser or the config is invalid.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	b, ok := deps.Store.(dlqops.Browser)
	if !ok {
		return nil, fmt.Errorf("%w: the store %T cannot be browsed (no dlqops.Browser)", ErrInvalidConfig, deps.Store)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Audit == nil {
		deps.Audit = io.Discard
	}
	tpl, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, deps: deps, store: b, tpl: tpl, csrfKey: key, canaries: newCanaries(),
		throttle: newThrottle(cfg.LoginThrottle)}
	s.handler = s.routes()
	return s, nil
}

// Close stops the running canary replays and waits for them.
func (s *Server) Close() error {
	s.canaries.stop()
	return nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", s.groupsPage)
	mux.HandleFunc("GET /group", s.groupPage)
	mux.HandleFunc("GET /letter", s.letterPage)
	mux.HandleFunc("GET /search", s.searchPage)
	mux.HandleFunc("GET /edit", s.editPage)
	mux.HandleFunc("GET /canary", s.canaryPage)
	mux.HandleFunc("POST /archive", s.archive)
	mux.HandleFunc("POST /restore", s.restore)
	mux.HandleFunc("POST /replay", s.replayOne)
	mux.HandleFunc("POST /edit", s.edit)
	mux.HandleFunc("POST /canary", s.startCanary)
	mux.HandleFunc("POST /canary/stop", s.stopCanary)
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.refused(w, r, "cross-origin request refused")
	}))
	return s.secure(s.authenticate(cop.Handler(s.csrf(mux))))
}

// principal is an authenticated caller.
type principal struct {
	Name string
	Role Role
}

type ctxKey struct{}

func who(r *http.Request) principal {
	p, _ := r.Context().Value(ctxKey{}).(principal)
	return p
}

// secure sets the headers every response carries: a strict content
// security policy (no inline script or style), no sniffing, no framing.
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// authenticate accepts basic auth of a configured user or a bearer token;
// with neither configured (the loopback-only insecure mode) everyone is an
// admin named "local", and only a request for a loopback Host is served
// (against DNS rebinding: a site whose name resolves to 127.0.0.1 is
// same-origin to itself, so neither the CSRF token nor the cross-origin
// protection stops its pages). A viewer's POST is refused. A refused login
// is audited and counted against its client address; a client past its
// LoginThrottle is answered 429 before its credentials are looked at.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.cfg.HasAuth() && !loopbackHost(r.Host) {
			http.Error(w, "levee/console: without authentication the console serves only a loopback Host (localhost, 127.0.0.1, [::1])", http.StatusForbidden)
			return
		}
		if s.refuseThrottled(w, r) {
			return
		}
		p, ok := s.login(r)
		if !ok {
			s.loginFailed(r)
			w.Header().Set("WWW-Authenticate", `Basic realm="levee dead-letter console", charset="UTF-8"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, p))
		if r.Method != http.MethodGet && r.Method != http.MethodHead && p.Role != RoleAdmin {
			s.refused(w, r, "read-only role")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) login(r *http.Request) (principal, bool) {
	if !s.cfg.HasAuth() {
		return principal{Name: "local", Role: RoleAdmin}, true
	}
	if name, pw, ok := r.BasicAuth(); ok {
		for _, u := range s.cfg.Users {
			// compare both, always, in constant time
			n := subtle.ConstantTimeCompare([]byte(name), []byte(u.Name))
			p := subtle.ConstantTimeCompare([]byte(pw), []byte(u.Password))
			if n&p == 1 {
				return principal{Name: u.Name, Role: u.Role}, true
			}
		}
		return principal{}, false
	}
	const bearer = "Bearer "
	if a := r.Header.Get("Authorization"); len(a) > len(bearer) && a[:len(bearer)] == bearer {
		tok := []byte(a[len(bearer):])
		for _, t := range s.cfg.Tokens {
			if subtle.ConstantTimeCompare(tok, []byte(t.Token)) == 1 {
				return principal{Name: t.Name, Role: t.Role}, true
			}
		}
	}
	return principal{}, false
}

// csrfToken is the form token of a principal: an HMAC of its name under
// the server's random key, so another site cannot forge it.
func (s *Server) csrfToken(p principal) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte(p.Name))
	m.Write([]byte{0})
	m.Write([]byte(p.Role))
	return hex.EncodeToString(m.Sum(nil))
}

// csrf checks the form token of every POST (besides the cross-origin
// protection in front of it, which rejects cross-site requests by their
// Sec-Fetch-Site and Origin headers).
func (s *Server) csrf(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := parseForm(r); err != nil {
				if tooBig := new(http.MaxBytesError); errors.As(err, &tooBig) {
					http.Error(w, fmt.Sprintf("levee/console: a form is at most %d bytes", maxForm), http.StatusRequestEntityTooLarge)
					return
				}
				http.Error(w, "levee/console: unreadable form", http.StatusBadRequest)
				return
			}
			want := s.csrfToken(who(r))
			if got := r.PostFormValue("csrf"); !hmac.Equal([]byte(got), []byte(want)) {
				s.refused(w, r, "missing or wrong CSRF token")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// maxForm bounds a POST body (an edited payload included).
const maxForm = 4 << 20

// parseForm reads a POST's form, URL-encoded or multipart, and returns
// the error reading it (ParseMultipartForm alone drops ParseForm's, a
// body past maxForm included).
func parseForm(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return err
	}
	if err := r.ParseMultipartForm(maxForm); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		return err
	}
	return nil
}

// audit writes one line of the audit log.
func (s *Server) audit(r *http.Request, action string, fields map[string]any) {
	entry := map[string]any{"at": s.deps.Now().UTC().Format(time.RFC3339Nano), "actor": who(r).Name,
		"action": action, "remote": r.RemoteAddr}
	for k, v := range fields {
		entry[k] = v
	}
	b, _ := json.Marshal(entry)
	s.auditMu.Lock()
	defer s.auditMu.Unlock()
	_, _ = s.deps.Audit.Write(append(b, '\n'))
}

// event adds an event to each letter's log.
func (s *Server) event(ctx context.Context, r *http.Request, action, detail, replayUUID string, ids ...string) error {
	for _, id := range ids {
		ev := dlqops.Event{LetterID: id, At: s.deps.Now(), Actor: who(r).Name, Action: action, Detail: detail, ReplayUUID: replayUUID}
		if err := s.store.AddEvent(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// render runs a page template with the common fields.
func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, name string, data map[string]any) {
	p := who(r)
	data["User"] = p
	data["CSRF"] = s.csrfToken(p)
	data["CanAct"] = p.Role == RoleAdmin
	data["CanReplay"] = p.Role == RoleAdmin && s.deps.Publisher != nil
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	// an error after the header is out only cuts the page short
	_ = s.tpl.ExecuteTemplate(w, name, data)
}

// fail answers an error page.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	s.render(w, r, code, "error.html", map[string]any{"Title": http.StatusText(code), "Error": err.Error(), "Code": code})
}
