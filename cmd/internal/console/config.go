package console

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	"github.com/levee-dev/levee"
	"github.com/levee-dev/levee/dlq/dlqops"
	lconfig "github.com/levee-dev/levee/internal/config"
)

// ErrInvalidConfig is wrapped by every configuration error of the console.
var ErrInvalidConfig = levee.InvalidConfigSentinel("levee/console: invalid configuration")

// Role is what a user may do.
type Role string

// Roles. An admin may act (archive, restore, replay, edit); a viewer
// reads only: every POST is refused.
const (
	RoleAdmin  Role = "admin"
	RoleViewer Role = "viewer"
)

// User is one basic-auth login of the `console: users:` list. Put the
// password in the environment (password: ${CONSOLE_PASSWORD}).
type User struct {
	Name     string `yaml:"name"`
	Password string `yaml:"password"`
	Role     Role   `yaml:"role"`
}

// Token is one bearer token of the `console: tokens:` list
// (Authorization: Bearer <token>).
type Token struct {
	Name  string `yaml:"name"`
	Token string `yaml:"token"`
	Role  Role   `yaml:"role"`
}

// Canary holds the defaults of a canary replay started from the console.
// In YAML an explicit zero wait or rate is an error (remove the key for the
// default): a rate of 0 is no limit to `levee dlq replay --rate`, and here
// it was the default of 10/s.
type Canary struct {
	// Waves are the wave sizes; empty means dlqops.DefaultCanaryWaves.
	Waves []int `yaml:"waves"`
	// MaxFailureRatio halts a wave whose failures pass it; default 0 (the
	// first failure halts).
	MaxFailureRatio float64 `yaml:"max_failure_ratio"`
	// Wait is how long a wave waits for re-dead-letters; zero means
	// dlqops.DefaultCanaryWait, 30s.
	Wait time.Duration `yaml:"wait" levee:"nonzero"`
	// Rate is the velocity limit in messages per second, in the file's rate
	// syntax (10/s, 600/min, or a bare number); zero means
	// DefaultCanaryRate.
	Rate float64 `yaml:"rate" levee:"rate,nonzero"`
}

// Config is the `console:` section of levee.yaml.
type Config struct {
	// Listen is the address served; default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// Users and Tokens authenticate requests; at least one is required
	// unless the console listens on loopback and the command says
	// --insecure-loopback.
	Users  []User  `yaml:"users"`
	Tokens []Token `yaml:"tokens"`
	// TraceLink is a URL template for a letter's trace ID, with
	// "{trace_id}" in it (say "http://jaeger:16686/trace/{trace_id}");
	// empty shows the ID without a link.
	TraceLink string `yaml:"trace_link"`
	// AuditLog is a file the audit log is appended to (JSON lines);
	// empty means standard error.
	AuditLog string `yaml:"audit_log"`
	// Canary holds the canary replay defaults.
	Canary Canary `yaml:"canary"`
	// LoginThrottle bounds failed logins per client address.
	LoginThrottle LoginThrottle `yaml:"login_throttle"`
}

// DefaultCanaryRate is the velocity limit, in messages per second, of a
// canary started from the console when console.canary.rate is not set.
const DefaultCanaryRate = 10

// DefaultListen is Config.Listen's default.
const DefaultListen = "127.0.0.1:8080"

// Validate checks c (and is run by the YAML decoder after decoding). Each
// error names the key at fault (users, tokens, trace_link, login_throttle,
// canary); the decoder has already located a user's, a token's, the login
// throttle's or the canary's own problem at its key (Validate of User,
// Token, LoginThrottle and Canary).
func (c *Config) Validate() error {
	seen := map[string]bool{}
	for _, u := range c.Users {
		if err := u.Validate(); err != nil {
			return lconfig.Field("users", err)
		}
		if seen[u.Name] {
			return lconfig.Field("users", fmt.Errorf("console user %q listed twice", u.Name))
		}
		seen[u.Name] = true
	}
	for _, t := range c.Tokens {
		if err := t.Validate(); err != nil {
			return lconfig.Field("tokens", err)
		}
	}
	if c.TraceLink != "" && !strings.Contains(c.TraceLink, "{trace_id}") {
		return lconfig.Field("trace_link", fmt.Errorf("console trace_link %q has no {trace_id}", c.TraceLink))
	}
	if err := c.LoginThrottle.Validate(); err != nil {
		return lconfig.Field("login_throttle", err)
	}
	if err := c.Canary.Validate(); err != nil {
		return lconfig.Field("canary", err)
	}
	return nil
}

// Validate checks one user of the users list, naming the key at fault: a
// name without ':', a password of at least 8 bytes (never shown), a role.
func (u User) Validate() error {
	switch {
	case u.Name == "" || strings.Contains(u.Name, ":"):
		return lconfig.Field("name", errors.New("console user: a name without ':' is required"))
	case len(u.Password) < 8:
		return lconfig.Field("password", fmt.Errorf("console user %q: a password of at least 8 bytes is required", u.Name))
	case u.Role != RoleAdmin && u.Role != RoleViewer:
		return lconfig.Field("role", fmt.Errorf("console user %q: role %q (want admin or viewer)", u.Name, u.Role))
	}
	return nil
}

// Validate checks one token of the tokens list, naming the key at fault:
// a name, a token of at least 16 bytes (never shown), a role.
func (t Token) Validate() error {
	switch {
	case t.Name == "":
		return lconfig.Field("name", errors.New("console token: a name is required"))
	case len(t.Token) < 16:
		return lconfig.Field("token", fmt.Errorf("console token %q: at least 16 bytes are required", t.Name))
	case t.Role != RoleAdmin && t.Role != RoleViewer:
		return lconfig.Field("role", fmt.Errorf("console token %q: role %q (want admin or viewer)", t.Name, t.Role))
	}
	return nil
}

// Validate checks the canary section, naming the key at fault.
func (c Canary) Validate() error {
	switch {
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return lconfig.Field("rate", errors.New("console canary: the rate must be finite and not negative"))
	case c.Wait < 0:
		return lconfig.Field("wait", errors.New("console canary: the wait must not be negative"))
	}
	if _, err := (dlqops.CanaryPlan{Waves: c.Waves}).Validate(); err != nil {
		return lconfig.Field("waves", err)
	}
	if _, err := (dlqops.CanaryPlan{MaxFailureRatio: c.MaxFailureRatio}).Validate(); err != nil {
		return lconfig.Field("max_failure_ratio", err)
	}
	return nil
}

// HasAuth reports whether any user or token is configured.
func (c *Config) HasAuth() bool { return len(c.Users) > 0 || len(c.Tokens) > 0 }

// CheckListen refuses an unauthenticated console unless it listens on a
// loopback address and insecureLoopback is set.
func CheckListen(c *Config, addr string, insecureLoopback bool) error {
	if c.HasAuth() {
		return nil
	}
	if !insecureLoopback {
		return fmt.Errorf("%w: the console needs console.users or console.tokens (or --insecure-loopback on a loopback address)", ErrInvalidConfig)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: listen %q: %w", ErrInvalidConfig, addr, err)
	}
	if !loopback(host) {
		return fmt.Errorf("%w: --insecure-loopback needs a loopback listen address, not %q", ErrInvalidConfig, addr)
	}
	return nil
}

// loopback reports whether host (a name or an IP, without a port) is
// localhost or a loopback address.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loopbackHost reports whether a request's Host header (with or without a
// port, an IPv6 address in brackets) names a loopback host: what a
// browser sends to the console it opened on loopback, and not what it
// sends to a site whose name an attacker rebinds to 127.0.0.1.
func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
	}
	return loopback(host)
}
