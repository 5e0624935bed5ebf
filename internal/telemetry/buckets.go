package telemetry

// Bucket boundaries, in seconds, of Levee's duration histograms. OTel's
// default boundaries (0, 5, 10, 25 … 10000) are meant for milliseconds: on a
// seconds unit every wait below 5 s lands in one bucket and a dashboard's
// p99 reads about 4.95 s whatever the truth. Each layout below is a
// 1-2.5-5 series (neighbouring boundaries at most 2.5 apart) over the range
// its instrument measures, so histogram_quantile is off by at most one such
// bucket (internal/telemetrytest checks it against a real Prometheus).
// Each function returns a new slice; pass it to
// metric.WithExplicitBucketBoundaries. docs/TELEMETRY.md lists them.

// WorkBuckets fits work done per message or batch: levee.handler.duration
// and levee.batch.duration, 1 ms to 60 s (15 boundaries).
func WorkBuckets() []float64 {
	return []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60}
}

// WaitBuckets fits the wait for a token or a slot, often nothing and
// usually below a second: levee.ratelimit.wait.duration,
// levee.priority.wait.duration and levee.breaker.drain.wait.duration,
// 100 µs to 60 s (18 boundaries).
func WaitBuckets() []float64 {
	return []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60}
}

// PauseBuckets fits the wait for an open breaker, which lasts about its
// open_for (seconds) and at most its max hold (minutes):
// levee.breaker.wait.duration, 10 ms to 10 min (15 boundaries).
func PauseBuckets() []float64 {
	return []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 600}
}
