package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/levee-dev/levee/dlq"
	"github.com/levee-dev/levee/dlq/dlqops"
	iconfig "github.com/levee-dev/levee/internal/config"
	"github.com/levee-dev/levee/validate"
)

// ErrInvalidConfig is wrapped by every configuration error: a broken file, an
// unknown key, a wrong type, a bad value, a missing variable, a configured
// handler the router does not have. The error text names the file, the
// line and the key path, and errors.Is matches it with
// levee.ErrInvalidConfig too.
var ErrInvalidConfig = iconfig.ErrInvalidConfig

// Config is a loaded and validated levee.yaml. Build it with Load or Parse;
// apply it to a router with Apply. Read its sections with Transport, Store,
// Schemas and Handler. A Config is not modified after loading and is safe
// for concurrent use.
type Config struct {
	file      string
	transport iconfig.Raw
	console   iconfig.Raw
	store     dlqops.StoreConfig
	hasStore  bool
	schemas   *validate.Registry
	fleet     FleetConfig
	hasFleet  bool
	handlers  map[string]*Handler
	// shared holds the named shared resources (schedulers, breakers), by
	// section key and then by name, undecoded until a handler needs them.
	shared   map[string]map[string]iconfig.Raw
	sections []Section
	// sources records where each value came from (file line, env).
	sources *iconfig.Sources
	// keyLines is the line of each handler section's key, by path.
	keyLines map[string]int
}

// Load reads, expands and validates the file at path with the default
// sections, expanding variables from the process environment. See Parse.
func Load(path string) (*Config, error) {
	doc, err := iconfig.Load(path)
	if err != nil {
		return nil, err
	}
	return whole(fromDocument(doc, DefaultSections()))
}

// Check loads the file at path like Load, but returns what loaded
// together with the error, so that a checker can go on with the sections
// that are valid (decode the transport section, print settings) and
// report every problem at once. The Config is nil only when the file
// cannot be read or is not YAML; with a non-nil error it lacks the
// handler sections that failed and must not be applied.
func Check(path string) (*Config, error) {
	doc, err := iconfig.Load(path)
	if err != nil {
		return nil, err
	}
	return fromDocument(doc, DefaultSections())
}

// whole drops a partly loaded Config.
func whole(c *Config, err error) (*Config, error) {
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Parse parses data as the file named file (the name is used in errors
// and to resolve the schemas' relative paths). Variables are expanded with
// env (nil means none are set; os.LookupEnv is the usual choice). sections
// lists the handler-level keys that are accepted; nil means
// DefaultSections(). Every error wraps ErrInvalidConfig.
func Parse(file string, data []byte, env func(string) (string, bool), sections []Section) (*Config, error) {
	doc, err := iconfig.Parse(file, data, env)
	if err != nil {
		return nil, err
	}
	if sections == nil {
		sections = DefaultSections()
	}
	return whole(fromDocument(doc, sections))
}

// File returns the path the configuration was read from.
func (c *Config) File() string { return c.file }

// Transport returns the file's transport section. Its schema belongs to
// the transport adapters (adapters.TransportConfig), outside the core, so
// it is decoded by the caller with Transport.Decode.
func (c *Config) Transport() Transport { return Transport{raw: c.transport} }

// Store returns the file's store section (where the dlqops.Monitor keeps dead
// letters and `attempts: shared` counts attempts), validated, and whether
// the file has one. Without one the zero StoreConfig, an in-memory store,
// is returned.
func (c *Config) Store() (dlqops.StoreConfig, bool) { return c.store, c.hasStore }

// Schemas returns the registry compiled from the file's schemas section
// (topic -> JSON Schema file, paths relative to the file's folder), or nil
// when there is none. The dlq slot validates payloads with it unless
// Deps.Validator is set.
func (c *Config) Schemas() *validate.Registry { return c.schemas }

// Handler returns the named handler's section, or nil when the file does
// not configure that handler. The methods of a nil *Handler report an
// empty section, so cfg.Handler(name).Batch() needs no check.
func (c *Config) Handler(name string) *Handler { return c.handlers[name] }

// HandlerNames returns the configured handler names, sorted.
func (c *Config) HandlerNames() []string { return sortedKeys(c.handlers) }

// Describe returns every handler's resolved stack in canonical order. A
// dlq slot's line ends with validate= and the topics of the file's
// schemas when it has some: the dlq validates a payload of those topics
// before each attempt.
func (c *Config) Describe() string {
	var extra map[string]string
	if c.schemas != nil {
		extra = map[string]string{"dlq": "validate=" + strings.Join(c.schemas.Topics(), ",")}
	}
	var b strings.Builder
	for _, name := range c.HandlerNames() {
		fmt.Fprintf(&b, "handler %s:\n", name)
		d := c.handlers[name].describe(extra)
		if d == "" {
			d = "(no middleware)\n"
		}
		for _, line := range strings.SplitAfter(d, "\n") {
			if line != "" {
				b.WriteString("  " + line)
			}
		}
	}
	return b.String()
}

// Transport is the transport section of a file, kept undecoded: Levee's
// core does not know the transports. The zero Transport is an absent
// section.
type Transport struct{ raw iconfig.Raw }

// IsZero reports whether the file has no transport section.
func (t Transport) IsZero() bool { return t.raw.IsZero() }

// Decode decodes the transport section into v, a non-nil pointer to the
// transport adapters' struct (adapters.TransportConfig, or any struct with
// yaml tags). Decoding is strict: an unknown key, a wrong type or a bad
// value is an error wrapping ErrInvalidConfig that names the file, the line
// and the key path ("levee.yaml:4: transport.kind: ..."). If v has a method
// Validate() error, it runs after decoding and its error is located the
// same way. An absent section leaves v unchanged and returns nil.
func (t Transport) Decode(v any) error { return decodeEvery(t.raw, v) }

// decodeEvery decodes raw into v, with every problem v's Validate reports
// located (everyProblem).
func decodeEvery(raw iconfig.Raw, v any) error {
	if err := raw.Decode(v); err != nil {
		return everyProblem(raw, v, err)
	}
	return nil
}

// Console returns the console section (`levee dlq serve`: listen address,
// users, tokens, trace links, canary defaults), kept undecoded like the
// transport: the console lives in the cmd module.
func (c *Config) Console() Console { return Console{raw: c.console} }

// Console is the console section of a file, kept undecoded. The zero
// Console is an absent section.
type Console struct{ raw iconfig.Raw }

// IsZero reports whether the file has no console section.
func (c Console) IsZero() bool { return c.raw.IsZero() }

// Decode decodes the console section into v, strictly, with errors that
// name the file, the line and the key path, like Transport.Decode; an
// absent section leaves v unchanged and returns nil.
func (c Console) Decode(v any) error { return decodeEvery(c.raw, v) }

// fromDocument builds a Config from a parsed document: the top-level
// sections in their registered order (toplevel.go), each needing the
// results of the ones before it. It does not stop at the first problem:
// the error lists every one, sorted by line (see ErrInvalidConfig).
func fromDocument(doc *iconfig.Document, sections []Section) (*Config, error) {
	var top map[string]iconfig.Raw
	decodeErr := doc.Decode(&top)
	cfg := &Config{
		file:     doc.File,
		sources:  doc.Sources,
		keyLines: map[string]int{},
		handlers: map[string]*Handler{},
		shared:   map[string]map[string]iconfig.Raw{},
		sections: sections,
	}
	tops := topSections()
	var known []string
	for _, t := range tops {
		known = append(known, t.key)
	}
	sort.Strings(known)
	errs := []error{decodeErr}
	for _, key := range sortedKeys(top) {
		if !slices.Contains(known, key) {
			errs = append(errs, iconfig.UnknownKey(doc.File, top[key].Line(), key, key, known))
		}
	}
	for _, t := range tops {
		errs = append(errs, t.load(cfg, top[t.key]))
	}
	return cfg, iconfig.Join(errs...)
}

// loadHandlers decodes the handlers section, every handler, every key.
func (c *Config) loadHandlers(raw iconfig.Raw) error {
	var handlers map[string]map[string]iconfig.Raw
	if err := raw.Decode(&handlers); err != nil {
		return err
	}
	byKey := map[string]Section{}
	var keys []string
	for _, s := range c.sections {
		byKey[s.Key] = s
		keys = append(keys, s.Key)
	}
	sort.Strings(keys)
	var errs []error
	for _, name := range sortedKeys(handlers) {
		hc, err := c.handlerFrom(name, handlers[name], byKey, keys)
		errs = append(errs, err)
		c.handlers[name] = hc
	}
	return iconfig.Join(errs...)
}

// handlerFrom decodes one handler's sections and checks their references
// to the store and to shared resources. It returns the sections that
// decoded and an error listing every problem.
func (c *Config) handlerFrom(name string, raw map[string]iconfig.Raw, byKey map[string]Section, keys []string) (*Handler, error) {
	hc := &Handler{name: name}
	var errs []error
	for _, key := range sortedKeys(raw) {
		r := raw[key]
		path := "handlers." + name + "." + key
		c.keyLines[path] = r.Line()
		sec, ok := byKey[key]
		if !ok {
			errs = append(errs, iconfig.UnknownKey(c.file, r.Line(), path, key, keys))
			continue
		}
		v, err := sec.decode(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if v == nil {
			continue
		}
		if dc, ok := v.(dlq.Config); ok && dc.SharedAttempts() && c.store.StoreKind() == dlqops.StoreKindMemory {
			errs = append(errs, &iconfig.Error{File: c.file, Line: childLine(r, "attempts"), Path: path + ".attempts",
				Err: fmt.Errorf("attempts: shared counts in the store section's backend; it needs `store: {kind: redis or postgres, ...}` (store kind is %s)", c.store.StoreKind())})
			continue
		}
		if sec.ref != nil {
			if err := c.checkRef(sec, v, r, path); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		hc.parts = append(hc.parts, part{sec: sec, value: v})
	}
	sort.SliceStable(hc.parts, func(i, j int) bool { return hc.parts[i].sec.Slot < hc.parts[j].sec.Slot })
	errs = append(errs, c.batchConflicts(name, hc))
	return hc, iconfig.Join(errs...)
}

// checkRef checks that the shared resource a section value names is
// defined, suggesting the closest defined name.
func (c *Config) checkRef(sec Section, v any, r iconfig.Raw, path string) error {
	shared, ref, refKey := sec.ref(v)
	if ref == "" {
		return nil
	}
	if _, ok := c.shared[shared][ref]; ok {
		return nil
	}
	defined := sortedKeys(c.shared[shared])
	msg := fmt.Sprintf("%q is not defined in the %s section", ref, shared)
	if len(defined) == 0 {
		msg += fmt.Sprintf(" (the file has no %s; add `%s: {%s: {...}}`)", shared, shared, yamlName(ref))
	} else {
		msg += iconfig.DidYouMean(ref, defined) + " (defined: " + strings.Join(defined, ", ") + ")"
	}
	return &iconfig.Error{File: c.file, Line: childLine(r, refKey), Path: path + "." + refKey, Err: r.Masked(errors.New(msg))}
}

// childLine returns the line of key inside the mapping raw, or the
// section's line.
// yamlName is name as a key or value in a hint: as it is when plain, else
// double-quoted, so a name holding a newline or a quote keeps the problem
// on one line and the hint valid YAML.
func yamlName(name string) string {
	if plainName.MatchString(name) {
		return name
	}
	return strconv.Quote(name)
}

var plainName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

func childLine(raw iconfig.Raw, key string) int {
	if n := raw.Node; n != nil {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i].Line
			}
		}
	}
	return raw.Line()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// loadSchemas compiles the schemas section: topic -> JSON Schema file,
// relative paths resolved from the configuration file's folder.
func loadSchemas(raw iconfig.Raw, file string) (*validate.Registry, error) {
	var m map[string]string
	if err := raw.Decode(&m); err != nil {
		return nil, err
	}
	dir := filepath.Dir(file)
	for topic, p := range m {
		if !filepath.IsAbs(p) {
			m[topic] = filepath.Join(dir, p)
		}
	}
	reg, err := validate.Load(m)
	if err != nil {
		return nil, raw.Errorf("%v", err)
	}
	return reg, nil
}
