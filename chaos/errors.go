package chaos

import "errors"

// ErrPlan is wrapped by every error about a plan: a broken file, an
// unknown key, a bad value.
var ErrPlan = errors.New("levee/chaos: invalid plan")
