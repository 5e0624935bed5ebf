// Package config is Levee's YAML decoding core: it parses a file keeping
// line numbers, expands ${VAR} and ${VAR:-default}, and decodes sections
// into plain Go structs with strict checks (unknown keys, wrong types,
// negative durations), every error naming the file, the line and the key
// path. Concern packages own their section structs; this package only
// knows the value kinds:
//
//   - time.Duration fields take Go durations ("250ms");
//   - float64 fields tagged `levee:"rate"` take rates ("200/s", "5/min") as
//     events per second;
//   - float64 fields tagged `levee:"percent"` take "10%" as 0.1;
//   - float64 fields without a kind take a number or a percentage ("50%"
//     is 0.5);
//   - a field tagged `levee:"nonzero"` (alone or after a kind:
//     `levee:"percent,nonzero"`) rejects an explicit zero or empty value:
//     its zero means "the default" in YAML while the Go option rejects
//     zero or reads it otherwise, so the file must leave the key out;
//   - Raw fields keep a section undecoded, for its owner to decode later.
//
// Decoding does not stop at the first problem: it goes on with the next
// key and returns every error (Join: one per line, sorted by line). It
// records where each value came from (Sources: line and ${VAR}) for
// `levee config check`.
package config
