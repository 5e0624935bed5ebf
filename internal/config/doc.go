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
//   - Raw fields keep a section undecoded, for its owner to decode later.
package config
