// Package telemetrytest holds cross-package telemetry tests: the Grafana
// dashboard's series checked against the real instruments of every merged
// concern package through the OTel Prometheus exporter, and the span events
// those packages add to the tracing consumer span. It has no API.
package telemetrytest
