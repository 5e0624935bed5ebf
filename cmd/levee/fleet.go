package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/levee-dev/levee/adapters/fleetredis"
	"github.com/levee-dev/levee/config"
	iconfig "github.com/levee-dev/levee/internal/config"
	"github.com/levee-dev/levee/internal/fleet"
)

const fleetUsage = `usage:
  levee fleet [--config FILE | --store URL] [--prefix P] breaker KEY force open|closed|none
  levee fleet [--config FILE | --store URL] [--prefix P] breaker KEY status

The fleet breaker's kill switch (docs/FLEET.md): force open holds messages
on every replica, force closed lets them all run, force none gives the
decision back to the shared window (after force open on a closed fleet,
through a drain, as after a recovery). Replicas follow within report_every
(200ms by default). KEY is the breaker's key (the handler's name unless
its fleet section sets key). The store comes from --store, or from the
fleet section of --config (default levee.yaml); with --config, a KEY that
is not one of the file's fleet breakers is refused (exit 2), when the file
configures any.
`

func runFleet(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("levee fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "levee.yaml", "the levee.yaml whose fleet section names the store")
	url := fs.String("store", "", "the fleet store's Redis URL (overrides --config)")
	prefix := fs.String("prefix", "", "the store's key prefix (default: the file's, else levee:fleet)")
	fs.Usage = func() { fmt.Fprint(stderr, fleetUsage) }
	if len(args) > 0 && args[0] == "help" {
		fmt.Fprint(stdout, fleetUsage)
		return 0
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, fleetUsage)
		return 0
	} else if err != nil {
		return 2
	}
	rest := fs.Args()
	if len(rest) < 3 || rest[0] != "breaker" || (rest[2] != "force" && rest[2] != "status") ||
		(rest[2] == "force" && len(rest) != 4) || (rest[2] == "status" && len(rest) != 3) {
		fmt.Fprint(stderr, fleetUsage)
		return 2
	}
	key := rest[1]
	storeURL, pfx := *url, *prefix
	if storeURL == "" {
		cfg, err := config.Load(*file)
		if err != nil {
			fmt.Fprintf(stderr, "levee: %s\n", termSafe(err.Error(), true))
			return 1
		}
		fc, ok := cfg.Fleet()
		if !ok {
			fmt.Fprintf(stderr, "levee: %s has no fleet section; pass --store\n", termSafe(*file, true))
			return 1
		}
		storeURL = fc.Store
		if pfx == "" {
			pfx = fc.Prefix
		}
		if keys := fleetBreakerKeys(cfg); len(keys) > 0 && !slices.Contains(keys, key) {
			hint := ""
			if s := iconfig.Suggest(key, keys); s != "" {
				hint = fmt.Sprintf("; did you mean %q?", s)
			}
			fmt.Fprintf(stderr, "levee: %s configures no fleet breaker with key %q%s (its fleet breakers: %s; --store reaches a key another file configures)\n",
				termSafe(*file, true), termSafe(key, true), hint, termSafe(strings.Join(keys, ", "), true))
			return 2
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := fleetredis.Open(ctx, storeURL, pfx, 5*time.Second)
	if err != nil {
		fmt.Fprintf(stderr, "levee: %s\n", termSafe(err.Error(), true))
		return 1
	}
	defer s.Close()
	if rest[2] == "force" {
		f, ok := fleet.ParseForce(rest[3])
		if !ok {
			fmt.Fprintf(stderr, "levee: force must be open, closed or none, not %q\n", termSafe(rest[3], true))
			return 2
		}
		if err := s.SetForce(ctx, key, f); err != nil {
			fmt.Fprintf(stderr, "levee: %s\n", termSafe(err.Error(), true))
			return 1
		}
	}
	f, err := s.Force(ctx, key)
	if err != nil {
		fmt.Fprintf(stderr, "levee: %s\n", termSafe(err.Error(), true))
		return 1
	}
	fmt.Fprintf(stdout, "fleet breaker %s: force %s\n", termSafe(key, false), f)
	return 0
}

// fleetBreakerKeys returns the keys of the fleet breakers cfg configures
// (a handler's fleet.key, else its name), sorted.
func fleetBreakerKeys(cfg *config.Config) []string {
	var keys []string
	for _, name := range cfg.HandlerNames() {
		if hf, ok := config.Value[config.HandlerFleet](cfg.Handler(name), "fleet"); ok && hf.Breaker != nil {
			k := hf.Key
			if k == "" {
				k = name
			}
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}
