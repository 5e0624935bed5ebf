// Package archtest holds tests of the module's architecture: which packages
// may import what (DESIGN.md, Layout). It has no code of its own.
package archtest
