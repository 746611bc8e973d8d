package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"
)

// A capture is what `townlink tail -capture FILE` writes and `townlink
// verify FILE` reads: a CBOR sequence (RFC 8742) with one item per MQTT
// message as received, [topic, payload] (a text and a byte string), status
// messages included, so the verifier can hold each payload against the
// topic it arrived on and the records against what the statuses announced.
//
// Captures written before topics were kept hold bare batch payloads (a map
// per message); they are still read, topic "".

// captureItem is one message of a capture.
type captureItem struct {
	_       struct{} `cbor:",toarray"`
	Topic   string
	Payload []byte
}

// appendCapture appends one message to a capture.
func appendCapture(w io.Writer, topic string, payload []byte) error {
	p, err := cbor.Marshal(captureItem{Topic: topic, Payload: payload})
	if err != nil {
		return err
	}
	_, err = w.Write(p)
	return err
}

// errCapture: the file is not a capture.
var errCapture = errors.New("not a townlink capture")

// readCapture calls fn for every message of a capture, in order; topic is
// "" for a message of an old capture (bare payloads). It stops at the
// first malformed item, naming it.
func readCapture(r io.Reader, fn func(n int, topic string, payload []byte) error) error {
	dec := cbor.NewDecoder(bufio.NewReader(r))
	for n := 1; ; n++ {
		var raw cbor.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: message %d: %v", errCapture, n, err)
		}
		switch raw[0] >> 5 {
		case 5: // map: a bare batch (old capture)
			err = fn(n, "", raw)
		case 4: // array: [topic, payload]
			var it captureItem
			if err := cbor.Unmarshal(raw, &it); err != nil {
				return fmt.Errorf("%w: message %d: want [topic, payload]: %v", errCapture, n, err)
			}
			if it.Topic == "" {
				return fmt.Errorf("%w: message %d: empty topic", errCapture, n)
			}
			err = fn(n, it.Topic, it.Payload)
		default:
			return fmt.Errorf("%w: message %d: want [topic, payload] or a batch map", errCapture, n)
		}
		if err != nil {
			return err
		}
	}
}
