module github.com/levee-dev/levee/internal/release

go 1.25.0

require golang.org/x/mod v0.38.0

require go.uber.org/goleak v1.3.0
