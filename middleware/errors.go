package middleware

import "github.com/levee-dev/levee"

// ErrInvalidConfig is wrapped by the error NewTimeout returns for a
// duration that is not positive; errors.Is matches it with
// levee.ErrInvalidConfig too. Configuration files are loaded by package
// config, which has its own ErrInvalidConfig.
var ErrInvalidConfig = levee.InvalidConfigSentinel("levee/middleware: invalid configuration")
