package levee

import "errors"

// ErrInvalidConfig is matched (errors.Is) by every error a Levee package
// returns for an invalid setting: each package has a sentinel of its own,
// named ErrInvalidConfig too, made with InvalidConfigSentinel, so a caller
// may test for the package's or for this one.
var ErrInvalidConfig = errors.New("levee: invalid configuration")

// InvalidConfigSentinel returns a distinct sentinel error with the given
// text that errors.Is also matches with ErrInvalidConfig. Each package makes
// its own ErrInvalidConfig with it.
func InvalidConfigSentinel(text string) error { return &configSentinel{text: text} }

type configSentinel struct{ text string }

func (e *configSentinel) Error() string        { return e.text }
func (e *configSentinel) Is(target error) bool { return target == ErrInvalidConfig }
