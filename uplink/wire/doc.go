// Package wire is the Townlink uplink contract, version 1 (see
// uplink-contract.md): topics, batches and records in deterministic CBOR,
// decimal fractions (tag 4), the evidence hash chain, status, commands and
// acknowledgements, and the platform-side checks (deduplication, gaps, chain
// verification).
//
// It imports only the standard library and github.com/fxamacker/cbor/v2: a
// county platform imports just this package.
//
// # Encoding
//
// Every encoder writes core deterministic CBOR (RFC 8949 §4.2.1): shortest
// heads, definite lengths, map keys sorted bytewise by their encoding, and
// the shortest float (16, 32 or 64 bits) that holds the value exactly.
// Encoders validate first: what they write, the decoders accept. Floats
// must be finite. Value.Equal and Record.Equal compare encodings, so
// Dec(10, -1) is not Dec(1, 0). Records and batches are encoded without
// reflection; AppendRecord encodes into a caller's buffer.
//
// The gateway encodes a record once (EncodeRecord, seq still 0), its queue
// assigns the seq with Seal (SetSeq, plus prev and hash on the evidence
// stream), and its forwarder frames stored records with AppendBatch. These
// work on bytes without decoding and are byte-identical to Encode.
//
// # Decoding
//
// Decode, DecodeRecord, DecodeStatus, DecodeCommand, DecodeCommandResult
// and DecodeAck are strict parsers for network input. They reject with an
// *Error that wraps ErrMalformed (not one well-formed CBOR item, trailing
// bytes, indefinite lengths), ErrTooLarge (over MaxInputBytes, MaxRecords,
// 100k map pairs, 16 levels of nesting), ErrVersion (v is not 1) or
// ErrSchema (missing, unknown, duplicate or wrongly typed keys; bad values)
// and names the point, e.g. `recs[3].vals["energy_kwh"]`. They accept
// valid input that is not in deterministic form; the evidence hash is
// always computed over the re-encoded record, so that does not matter.
//
// # Evidence
//
// VerifyChain names the first record that breaks the chain. A bare hash
// chain cannot reveal records cut off its end (compare with the gateway's
// status and later records) and cannot authenticate the gateway (that is
// the job of its TLS client certificate).
package wire
