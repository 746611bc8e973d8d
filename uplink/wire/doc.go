// Package wire is the Townlink uplink contract, version 1 (see
// uplink-contract.md): topics, batches and records in deterministic CBOR,
// decimal fractions (tag 4), the evidence hash chain, status, commands and
// acknowledgements, and the platform-side checks (deduplication, gaps, chain
// verification).
//
// It imports only the standard library and github.com/fxamacker/cbor/v2: a
// county platform imports just this package.
package wire
