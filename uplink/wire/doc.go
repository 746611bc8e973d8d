// Package wire is the Townlink uplink contract, version 1 revision 2:
// docs/contract.md in this repository is its description in words, and
// this package its implementation: topics, batches and records in
// deterministic CBOR, decimal fractions (tag 4), sequence numbers and gap
// records, the signed evidence chain, status, commands and
// acknowledgements, and the platform-side audit (deduplication, gaps,
// forgeries, chain and signature verification, truncation and rollback).
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
// assigns the seq with a Sealer (SetSeq, plus prev, hash, alg and sig on
// the evidence stream), and its forwarder frames stored records with
// AppendBatch. These work on bytes without decoding and are byte-identical
// to Encode.
//
// # Decoding
//
// Decode, DecodeTopic, DecodeRecord, DecodeStatus, DecodeStatusTopic,
// DecodeCommand, DecodeCommandResult and DecodeAck are strict parsers for
// network input. They reject with an *Error that wraps ErrMalformed (not
// one well-formed CBOR item, trailing bytes, indefinite lengths),
// ErrTooLarge (over MaxInputBytes, MaxRecords, 100k map pairs, 16 levels of
// nesting), ErrVersion (v is not 1) or ErrSchema (missing, unknown,
// duplicate or wrongly typed keys; bad values; seqs above MaxSeq; gap
// records on evidence, on alarms other than a restore's, or covering their
// own or later seqs) and names the point, e.g.
// `recs[3].vals["energy_kwh"]`. DecodeTopic and DecodeStatusTopic also
// refuse a payload whose gateway or stream differ from its topic
// (ErrIdentity). They accept valid input that is not in deterministic
// form; the evidence hash is always computed over the re-encoded record,
// so that does not matter.
//
// # Evidence
//
// Each evidence record's hash covers the record without hash and sig; sig
// is the gateway key's signature of hash (Signer, Verifier, Ed25519 by
// default). VerifyChainKey names the first record that breaks the chain or
// whose signature does not verify; without a key (VerifyChain) anyone who
// can write the gateway's storage can re-seal an altered chain. Audit
// holds a capture against the statuses (AddStatus): a tail cut off after
// the last seq a status announced, a rollback, or an evidence head that
// does not match is reported.
package wire
