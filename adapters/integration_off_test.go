//go:build !integration

package adapters_test

const integration = false
