// Package config is the gateway's YAML configuration: typed structs, strict
// decoding and validation, defaults in one place.
//
// Parse walks the yaml.Node tree itself so that every problem is reported
// with file:line:col (of the offending value; of the key for unknown or
// misplaced keys; of the mapping for missing keys), the path of the value
// and how to fix it:
//
//	townlink.yaml:14:15: devices[2].interval: "10" is not a duration (write it with a unit, e.g. 10s or 1m)
//	townlink.yaml:9:5: lines[0]: unknown key "buad" (did you mean "baud"?)
//
// All problems are collected (up to 20) and returned as Errors, which
// implements error with one problem per line; errors.As finds both Errors
// and each *Error, and errors.Is(err, ErrInvalid) holds.
//
// Top-level keys starting with "x-" are ignored, so they can hold shared
// settings for YAML anchors and merge keys:
//
//	x-meter: &meter {driver: dlt645, line: RS485-1, interval: 1m}
//	devices:
//	  - {<<: *meter, id: meter-1, address: "000000000001"}
//
// The package does not resolve board labels (port, pin are kept as
// written) and does not read password files (only their paths are kept).
// Redacted returns a copy safe to print or send to the platform.
package config
