package config

import (
	"fmt"
	"path/filepath"
	"sort"
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
}

// Load reads, expands and validates the file at path with the default
// sections, expanding variables from the process environment. See Parse.
func Load(path string) (*Config, error) {
	doc, err := iconfig.Load(path)
	if err != nil {
		return nil, err
	}
	return fromDocument(doc, DefaultSections())
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
	return fromDocument(doc, sections)
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

// Describe returns every handler's resolved stack in canonical order.
func (c *Config) Describe() string {
	var b strings.Builder
	for _, name := range c.HandlerNames() {
		fmt.Fprintf(&b, "handler %s:\n", name)
		d := c.handlers[name].Describe()
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
func (t Transport) Decode(v any) error { return t.raw.Decode(v) }

// The top level of a levee.yaml.
type fileConfig struct {
	Transport  iconfig.Raw                       `yaml:"transport"`
	Handlers   map[string]map[string]iconfig.Raw `yaml:"handlers"`
	Schedulers map[string]iconfig.Raw            `yaml:"schedulers"`
	Breakers   map[string]iconfig.Raw            `yaml:"breakers"`
	Store      iconfig.Raw                       `yaml:"store"`
	Schemas    iconfig.Raw                       `yaml:"schemas"`
	Fleet      iconfig.Raw                       `yaml:"fleet"`
}

// fromDocument builds a Config from a parsed document: the top level in
// order (shared resources, store, schemas), then each handler's sections
// (handlerFrom), every step needing the results of the steps before it.
func fromDocument(doc *iconfig.Document, sections []Section) (*Config, error) {
	var fc fileConfig
	if err := doc.Decode(&fc); err != nil {
		return nil, err
	}
	cfg := &Config{
		file:      doc.File,
		transport: fc.Transport,
		handlers:  map[string]*Handler{},
		shared:    map[string]map[string]iconfig.Raw{"schedulers": fc.Schedulers, "breakers": fc.Breakers},
		sections:  sections,
	}
	if !fc.Schemas.IsZero() {
		reg, err := loadSchemas(fc.Schemas, doc.File)
		if err != nil {
			return nil, err
		}
		cfg.schemas = reg
	}
	if !fc.Store.IsZero() {
		if err := fc.Store.Decode(&cfg.store); err != nil {
			return nil, err
		}
		cfg.hasStore = true
	}
	fleetCfg, hasFleet, err := fleetFrom(fc.Fleet)
	if err != nil {
		return nil, err
	}
	cfg.fleet, cfg.hasFleet = fleetCfg, hasFleet
	// Validate every shared resource now, referenced or not.
	kinds := sharedKinds()
	for section, entries := range cfg.shared {
		kind, ok := kinds[section]
		if !ok {
			continue
		}
		for _, name := range sortedKeys(entries) {
			if _, err := kind.decode(entries[name]); err != nil {
				return nil, err
			}
		}
	}
	byKey := map[string]Section{}
	var keys []string
	for _, s := range sections {
		byKey[s.Key] = s
		keys = append(keys, s.Key)
	}
	sort.Strings(keys)
	for _, name := range sortedKeys(fc.Handlers) {
		hc, err := cfg.handlerFrom(name, fc.Handlers[name], byKey, keys)
		if err != nil {
			return nil, err
		}
		cfg.handlers[name] = hc
	}
	return cfg, nil
}

// handlerFrom decodes one handler's sections and checks their references
// to the store and to shared resources.
func (c *Config) handlerFrom(name string, raw map[string]iconfig.Raw, byKey map[string]Section, keys []string) (*Handler, error) {
	hc := &Handler{name: name}
	for _, key := range sortedKeys(raw) {
		r := raw[key]
		path := "handlers." + name + "." + key
		sec, ok := byKey[key]
		if !ok {
			return nil, &iconfig.Error{File: c.file, Line: r.Line(), Path: path,
				Err: fmt.Errorf("unknown key %q (known keys: %s)", key, strings.Join(keys, ", "))}
		}
		v, err := sec.decode(r)
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue
		}
		if dc, ok := v.(dlq.Config); ok && dc.SharedAttempts() && c.store.StoreKind() == dlqops.StoreKindMemory {
			return nil, &iconfig.Error{File: c.file, Line: childLine(r, "attempts"), Path: path + ".attempts",
				Err: fmt.Errorf("attempts: shared counts in the store section's backend; it needs `store: {kind: redis or postgres, ...}` (store kind is %s)", c.store.StoreKind())}
		}
		if sec.ref != nil {
			if shared, ref, refKey := sec.ref(v); ref != "" {
				if _, ok := c.shared[shared][ref]; !ok {
					defined := sortedKeys(c.shared[shared])
					return nil, &iconfig.Error{File: c.file, Line: r.Line(), Path: path + "." + refKey,
						Err: fmt.Errorf("%s %q is not defined under %s: (defined: %s)", shared, ref, shared, strings.Join(defined, ", "))}
				}
			}
		}
		hc.parts = append(hc.parts, part{sec: sec, value: v})
	}
	sort.SliceStable(hc.parts, func(i, j int) bool { return hc.parts[i].sec.Slot < hc.parts[j].sec.Slot })
	return hc, nil
}

// childLine returns the line of key inside the mapping raw, or the
// section's line.
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
