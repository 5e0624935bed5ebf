package dlqops

import "github.com/levee-dev/levee"

// ErrInvalidConfig is wrapped by the errors the constructors
// (NewMonitor, NewReplayer, NewPruner, NewGroupGauges) and
// StoreConfig.Validate return for invalid settings. errors.Is matches it
// with levee.ErrInvalidConfig too.
var ErrInvalidConfig = levee.InvalidConfigSentinel("levee/dlqops: invalid configuration")
