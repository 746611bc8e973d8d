// Package uplink moves records from the gateway's durable queue to the
// county broker: Queue (durable FIFO per stream), Publisher (QoS 1, returns
// after PUBACK) and the Forwarder loop (peek → publish → ack).
package uplink

import (
	"context"
	"errors"
)

// Entry is one stored record and its per-stream sequence number.
type Entry struct {
	Seq  uint64
	Data []byte
}

// Queue is a durable FIFO for one stream. Append returns once the data is
// on disk; the queue assigns contiguous sequence numbers starting at 1 that
// survive restarts.
type Queue interface {
	Append(ctx context.Context, data ...[]byte) error
	// Peek returns up to n entries with Seq > after, oldest first. It waits
	// until at least one is available or ctx ends.
	Peek(ctx context.Context, after uint64, n int) ([]Entry, error)
	// Ack deletes entries that have been delivered.
	Ack(seqs ...uint64) error
}

// Publisher sends one message at QoS 1.
type Publisher interface {
	// Publish returns nil only after the broker's PUBACK.
	Publish(ctx context.Context, topic string, payload []byte) error
}

// ErrClosed is returned by a Queue or Publisher used after Close.
var ErrClosed = errors.New("uplink: closed")
