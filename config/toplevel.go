package config

import (
	"sort"

	iconfig "github.com/levee-dev/levee/internal/config"
)

// topSection is one top-level key of a levee.yaml and how it is loaded
// into a Config. A new top-level section adds one entry to topSections
// (and, if handlers refer to it by name, one to sharedKinds); nothing else
// in the loader changes. load receives the zero Raw when the file lacks
// the key, and returns every problem it finds (iconfig.Join).
type topSection struct {
	key  string
	load func(c *Config, raw iconfig.Raw) error
}

// topSections lists the top-level sections in load order: what a later
// one checks (the store for `attempts: shared`, the shared resources for
// references) is loaded before it.
func topSections() []topSection {
	tops := []topSection{
		{"transport", func(c *Config, raw iconfig.Raw) error { c.transport = raw; return nil }},
		// the console's (levee dlq serve), decoded by the cmd module
		{"console", func(c *Config, raw iconfig.Raw) error { c.console = raw; return nil }},
		{"schemas", (*Config).loadSchemaSection},
		{"store", func(c *Config, raw iconfig.Raw) error {
			if raw.IsZero() {
				return nil
			}
			if err := raw.Decode(&c.store); err != nil {
				return err
			}
			c.hasStore = true
			return nil
		}},
	}
	kinds := sharedKinds()
	names := make([]string, 0, len(kinds))
	for name := range kinds {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		tops = append(tops, topSection{name, func(c *Config, raw iconfig.Raw) error {
			return c.loadShared(name, kinds[name], raw)
		}})
	}
	tops = append(tops, topSection{"fleet", func(c *Config, raw iconfig.Raw) error {
		var err error
		c.fleet, c.hasFleet, err = fleetFrom(raw)
		return err
	}})
	return append(tops, topSection{"handlers", (*Config).loadHandlers})
}

func (c *Config) loadSchemaSection(raw iconfig.Raw) error {
	if raw.IsZero() {
		return nil
	}
	reg, err := loadSchemas(raw, c.file)
	if err != nil {
		return err
	}
	c.schemas = reg
	return nil
}

// loadShared validates every entry of a shared-resource section now,
// referenced or not, and keeps the entries that are valid (a reference to
// an invalid one is not reported twice: the entry's error is enough).
func (c *Config) loadShared(section string, kind sharedKind, raw iconfig.Raw) error {
	var entries map[string]iconfig.Raw
	if err := raw.Decode(&entries); err != nil {
		return err
	}
	c.shared[section] = entries
	var errs []error
	for _, name := range sortedKeys(entries) {
		if _, err := kind.decode(entries[name]); err != nil {
			errs = append(errs, err)
		}
	}
	return iconfig.Join(errs...)
}
