package console

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	lconfig "github.com/levee-dev/levee/internal/config"
	"github.com/levee-dev/levee/internal/lru"
	"github.com/levee-dev/levee/internal/trunc"
	"golang.org/x/time/rate"
)

// LoginThrottle bounds the failed logins of one client address, so a
// password cannot be guessed at the speed of the network. A client that
// used its burst is answered 429, with Retry-After, until it has earned
// another attempt, whatever credentials it sends; a login that succeeds
// costs nothing.
type LoginThrottle struct {
	// Burst is how many failed logins a client address may make at once;
	// zero means DefaultLoginBurst (in YAML remove the key: an explicit 0
	// is an error).
	Burst int `yaml:"burst" levee:"nonzero"`
	// PerMinute is how many more it earns a minute; zero means
	// DefaultLoginPerMinute (in YAML remove the key: an explicit 0 is an
	// error).
	PerMinute float64 `yaml:"per_minute" levee:"nonzero"`
	// Off turns the throttle off: behind a reverse proxy every client has
	// the proxy's address (the console does not trust X-Forwarded-For), so
	// one client's failures would lock out the others; let the proxy
	// throttle instead.
	Off bool `yaml:"off"`
}

// The defaults of LoginThrottle, and how many client addresses it keeps
// (the least recently refused are forgotten first).
const (
	DefaultLoginBurst     = 10
	DefaultLoginPerMinute = 10
	maxThrottledClients   = 10000
)

// Validate checks the section, naming the key at fault.
func (t LoginThrottle) Validate() error {
	if t.Burst < 0 {
		return lconfig.Field("burst", errors.New("console login_throttle: burst and per_minute must be finite and not negative"))
	}
	if t.PerMinute < 0 || math.IsNaN(t.PerMinute) || math.IsInf(t.PerMinute, 0) {
		return lconfig.Field("per_minute", errors.New("console login_throttle: burst and per_minute must be finite and not negative"))
	}
	return nil
}

// throttle counts failed logins per client address (an IPv6 address by
// its /64, which one host can hold whole).
type throttle struct {
	off   bool
	burst int
	every rate.Limit

	mu      sync.Mutex // makes get-or-create of a client's limiter atomic
	clients *lru.Map[string, *rate.Limiter]
}

func newThrottle(c LoginThrottle) *throttle {
	t := &throttle{off: c.Off, burst: c.Burst, every: rate.Limit(c.PerMinute / 60)}
	if t.burst == 0 {
		t.burst = DefaultLoginBurst
	}
	if c.PerMinute == 0 {
		t.every = rate.Limit(float64(DefaultLoginPerMinute) / 60)
	}
	t.clients = lru.New[string, *rate.Limiter](maxThrottledClients)
	return t
}

// wait returns how long the client must wait before it may try again: 0
// when it has an attempt left.
func (t *throttle) wait(client string, now time.Time) time.Duration {
	if t.off {
		return 0
	}
	lim, ok := t.clients.Get(client)
	if !ok {
		return 0
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) / float64(t.every) * float64(time.Second))
}

// fail takes one attempt from the client; it reports whether the client
// is now throttled.
func (t *throttle) fail(client string, now time.Time) bool {
	if t.off {
		return false
	}
	t.mu.Lock()
	lim, ok := t.clients.Get(client)
	if !ok {
		lim = rate.NewLimiter(t.every, t.burst)
		t.clients.Put(client, lim)
	}
	t.mu.Unlock()
	lim.AllowN(now, 1)
	return lim.TokensAt(now) < 1
}

// clientAddr is the throttle's key for a request: its remote IP, an IPv6
// one cut to its /64.
func clientAddr(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}

// refuseThrottled answers 429 when the request's client is throttled; it
// reports whether it did.
func (s *Server) refuseThrottled(w http.ResponseWriter, r *http.Request) bool {
	d := s.throttle.wait(clientAddr(r.RemoteAddr), s.deps.Now())
	if d <= 0 {
		return false
	}
	secs := int(math.Ceil(d.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	http.Error(w, fmt.Sprintf("levee/console: too many failed logins from this address; try again in %d s", secs), http.StatusTooManyRequests)
	return true
}

// loginFailed audits a refused login that presented credentials and
// counts it against the client. Requests without credentials (a
// browser's first request, which the 401 answers with a login prompt)
// are neither.
func (s *Server) loginFailed(r *http.Request) {
	var fields map[string]any
	if name, _, ok := r.BasicAuth(); ok {
		fields = map[string]any{"scheme": "basic", "user": trunc.String(name, 64)}
	} else if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		fields = map[string]any{"scheme": "bearer"}
	} else {
		return
	}
	fields["throttled"] = s.throttle.fail(clientAddr(r.RemoteAddr), s.deps.Now())
	s.audit(r, "login_refused", fields)
}

// refused audits a request refused after authentication (a viewer's
// POST, a missing or wrong CSRF token, a cross-origin request) and
// answers it 403.
func (s *Server) refused(w http.ResponseWriter, r *http.Request, reason string) {
	s.audit(r, "refused", map[string]any{"reason": reason, "method": r.Method, "path": trunc.String(r.URL.Path, 256)})
	http.Error(w, reason, http.StatusForbidden)
}
