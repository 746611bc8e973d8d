package wire

import (
	"errors"
	"strconv"
)

// Sentinel errors. Every error returned by a decoder or validator in this
// package wraps exactly one of them (errors.Is), usually inside an *Error
// that names the point.
var (
	// ErrMalformed: the input is not one well-formed CBOR data item (bad
	// syntax, truncated, trailing bytes, indefinite lengths).
	ErrMalformed = errors.New("wire: malformed CBOR")
	// ErrTooLarge: the input exceeds a size limit (bytes, records, map
	// pairs, nesting).
	ErrTooLarge = errors.New("wire: too large")
	// ErrVersion: the contract version is not Version.
	ErrVersion = errors.New("wire: unsupported contract version")
	// ErrSchema: well-formed CBOR that does not follow the contract: a
	// missing, unknown, duplicate or wrongly typed key, or a bad value.
	ErrSchema = errors.New("wire: schema violation")
	// ErrTopic: a topic, county, township, gateway id or stream name is
	// not valid.
	ErrTopic = errors.New("wire: bad topic")
	// ErrChain: the evidence hash chain is broken (see ChainError).
	ErrChain = errors.New("wire: evidence chain broken")
	// ErrIdentity: a message claims another gateway or stream than the
	// topic it arrived on (see DecodeTopic).
	ErrIdentity = errors.New("wire: payload does not match its topic")
	// ErrKey: a public key or signer is not usable.
	ErrKey = errors.New("wire: bad key")
)

// Error is a decoding or validation error. Err is one of the sentinels,
// Path names the offending point, e.g. `recs[3].vals["energy_kwh"]`.
type Error struct {
	Err  error
	Path string
	Msg  string
}

func (e *Error) Error() string {
	s := e.Err.Error()
	if e.Path != "" {
		s += ": " + e.Path
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

func schemaErr(path, msg string) error { return &Error{Err: ErrSchema, Path: path, Msg: msg} }

// at prefixes the path of an *Error with seg (a key or index).
func at(seg string, err error) error {
	var we *Error
	if errors.As(err, &we) {
		switch {
		case we.Path == "":
			we.Path = seg
		case we.Path[0] == '[':
			we.Path = seg + we.Path
		default:
			we.Path = seg + "." + we.Path
		}
		return we
	}
	return err
}

// idx is a path segment for an array index.
func idx(i int) string { return "[" + strconv.Itoa(i) + "]" }

// keyed is a path segment for a map entry with a free-form key.
func keyed(name, key string) string { return name + "[" + strconv.Quote(key) + "]" }

// ChainError names the first evidence record that breaks the hash chain.
type ChainError struct {
	Index  int    // position in the slice given to VerifyChain
	Seq    uint64 // that record's seq
	Reason string
}

func (e *ChainError) Error() string {
	return "wire: evidence chain broken at index " + strconv.Itoa(e.Index) +
		" (seq " + strconv.FormatUint(e.Seq, 10) + "): " + e.Reason
}

// Unwrap returns ErrChain.
func (e *ChainError) Unwrap() error { return ErrChain }
