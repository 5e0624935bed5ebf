// Package telemetry holds Levee's OpenTelemetry plumbing and naming rules,
// shared by every concern package. The rules (docs/TELEMETRY.md):
//
//   - instrument names are levee.<component>.<name>, lower snake case
//     within a part: levee.breaker.state, levee.ratelimit.wait.duration;
//   - units are UCUM: "s" for durations (float64 histograms), "{message}"
//     for message counts, "1" for ratios, "{state}" for enum gauges;
//   - every per-handler instrument carries the attributes handler and
//     topic; other attributes are named in docs/TELEMETRY.md;
//   - telemetry is opt-in: a nil provider means off (no-op), so a caller who
//     wants the OTel globals passes otel.GetTracerProvider() and
//     otel.GetMeterProvider() explicitly;
//   - per-message recording builds no attributes: precompute an option slice
//     per handler with Attrs and pass it as opts...
package telemetry
