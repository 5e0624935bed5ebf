package middleware

import (
	"io"

	"github.com/levee-dev/levee/internal/config"
)

// sharedKind builds a named shared resource from its section.
type sharedKind func(raw config.Raw, deps Deps) (any, io.Closer, error)

// sharedKinds lists the shared-resource sections and how to build each.
func sharedKinds() map[string]sharedKind {
	return map[string]sharedKind{}
}
