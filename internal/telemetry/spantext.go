package telemetry

import (
	"reflect"
	"unicode/utf8"

	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/levee-dev/levee/internal/trunc"
)

// MaxSpanText bounds a string a span gets from a message or an error: the
// messaging.message.id attribute (a producer chooses the UUID), the
// exception event's message and the status description (a handler's
// error often quotes the message).
const MaxSpanText = 1024

// SpanText returns s as a span may carry it: s itself when it is valid
// UTF-8 of at most MaxSpanText bytes (no allocation), else cut with
// trunc.String, invalid bytes replaced by U+FFFD. An OTLP exporter encodes
// span strings as protobuf strings, which must be valid UTF-8: one invalid
// string fails the export of the whole batch, every other span with it.
func SpanText(s string) string {
	if len(s) <= MaxSpanText && utf8.ValidString(s) {
		return s
	}
	return trunc.String(s, MaxSpanText)
}

// RecordError records err on span as span.RecordError does, an exception
// event with exception.type and exception.message, and sets the status
// Error with err's message, both bounded by SpanText, and error.type,
// which the semantic conventions require on every span whose operation
// failed. It costs what span.RecordError costs when the message needs no
// cut, and one attribute.
func RecordError(span trace.Span, err error) {
	span.SetAttributes(semconv.ErrorType(err))
	msg := err.Error()
	if text := SpanText(msg); text != msg {
		span.AddEvent(semconv.ExceptionEventName, trace.WithAttributes(
			semconv.ExceptionType(typeName(err)), semconv.ExceptionMessage(text)))
		span.SetStatus(codes.Error, text)
		return
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, msg)
}

// typeName is the exception.type the OTel SDK's RecordError gives err.
func typeName(err error) string {
	t := reflect.TypeOf(err)
	if t.PkgPath() == "" && t.Name() == "" {
		return t.String()
	}
	return t.PkgPath() + "." + t.Name()
}
