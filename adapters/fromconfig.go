package adapters

import (
	"fmt"

	"github.com/levee-dev/levee/config"
)

// FromConfig returns the transport section of a loaded levee.yaml as a
// TransportConfig, validated: cfg.Transport().Decode with the type filled
// in. A file without the section gives the zero TransportConfig
// (GoChannel). Errors wrap config.ErrInvalidConfig and name the file, the
// line and the key path ("levee.yaml:4: transport.kind: ..."); a nil
// cfg (what a failed config.Load returns) is an error too.
func FromConfig(cfg *config.Config) (TransportConfig, error) {
	var tc TransportConfig
	if cfg == nil {
		return tc, fmt.Errorf("%w: the *config.Config is nil (did config.Load return an error?)", config.ErrInvalidConfig)
	}
	err := cfg.Transport().Decode(&tc)
	return tc, err
}
