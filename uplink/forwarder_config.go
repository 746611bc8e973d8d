package uplink

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Forwarder defaults, applied by NewForwarder to zero fields.
const (
	DefaultMaxBatch   = 100
	DefaultWindow     = 8
	DefaultRetry      = time.Second
	DefaultMaxRetry   = 30 * time.Second
	DefaultAckTimeout = 30 * time.Second
	// DefaultUnackedBatches × Window × MaxBatch is the default MaxUnacked.
	DefaultUnackedBatches = 10
)

// ErrForwarder reports an invalid ForwarderConfig or a misuse of a
// Forwarder.
var ErrForwarder = errors.New("uplink: invalid forwarder")

// AckMode selects when a published record is acked in the Queue (deleted).
type AckMode int

const (
	// AckBroker (the default): a batch is done when the broker's PUBACK
	// arrives (Publish returned nil).
	AckBroker AckMode = iota
	// AckPlatform: a batch is done only when the platform says it has
	// stored it, through Forwarder.PlatformAck. Records published and not
	// acknowledged are sent again after AckTimeout or a reconnect.
	AckPlatform
)

func (m AckMode) String() string {
	switch m {
	case AckBroker:
		return "broker"
	case AckPlatform:
		return "platform"
	}
	return fmt.Sprintf("AckMode(%d)", int(m))
}

// ForwarderConfig configures a Forwarder. NewForwarder validates it and
// works on its own copy: the caller's value is never changed.
type ForwarderConfig struct {
	Queue     Queue     // required
	Publisher Publisher // required
	Topic     string    // required
	// Frame builds one MQTT payload from stored records (the gateway passes
	// wire.AppendBatch); required. It is called from Run's goroutine only.
	Frame func(recs [][]byte) ([]byte, error)

	MaxBatch int // records per message; 0: DefaultMaxBatch
	// MaxBytes bounds the stored bytes of one message's records (0: no
	// bound); a single larger record still goes, alone.
	MaxBytes int
	// MaxDelay lets a live batch that is not full wait up to this long for
	// more records, so a quiet township sends fewer, fuller messages
	// (0: publish at once). The backlog never waits.
	MaxDelay time.Duration
	Window   int           // batches in flight at once, per lane; 0: DefaultWindow
	Retry    time.Duration // first pause after a failed publish or peek, doubling; 0: DefaultRetry
	// MaxRetry is where the pause stops doubling; 0: DefaultMaxRetry, or
	// Retry if that is longer.
	MaxRetry time.Duration
	Logger   *slog.Logger // nil: discard
	OnAck    func(n int)  // optional: called with the number of records acked

	// Pacer, if set, paces the backlog (see Forwarder); the Queue must then
	// implement LastSeqer. Share one Pacer between the streams whose
	// backlogs should together drain at its rate.
	Pacer *Pacer

	Ack AckMode // AckBroker (default) or AckPlatform
	// AckTimeout (AckPlatform only): records published and not acknowledged
	// by the platform for this long are sent again; 0: DefaultAckTimeout.
	AckTimeout time.Duration
	// MaxUnacked (AckPlatform only): the most records published and
	// awaiting the platform's acknowledgement; no new batch goes out while
	// there are that many. 0: DefaultUnackedBatches×Window×MaxBatch.
	MaxUnacked int
}

// LastSeqer is a Queue that reports its last assigned seq (badgerq.Queue
// does). A paced Forwarder needs it to tell the backlog from live records.
type LastSeqer interface {
	LastSeq() uint64
}

// check reports the first invalid field, by name.
func (c *ForwarderConfig) check() error {
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrForwarder, field, fmt.Sprintf(format, a...))
	}
	switch {
	case c.Queue == nil:
		return bad("Queue", "required")
	case c.Publisher == nil:
		return bad("Publisher", "required")
	case c.Topic == "":
		return bad("Topic", "required")
	case c.Frame == nil:
		return bad("Frame", "required")
	case c.MaxBatch < 0:
		return bad("MaxBatch", "%d, want ≥ 1 (0: default %d)", c.MaxBatch, DefaultMaxBatch)
	case c.MaxBytes < 0:
		return bad("MaxBytes", "%d, want ≥ 0 (0: no bound)", c.MaxBytes)
	case c.MaxDelay < 0:
		return bad("MaxDelay", "%v, want ≥ 0", c.MaxDelay)
	case c.Window < 0:
		return bad("Window", "%d, want ≥ 1 (0: default %d)", c.Window, DefaultWindow)
	case c.Retry < 0:
		return bad("Retry", "%v, want > 0 (0: default %v)", c.Retry, DefaultRetry)
	case c.MaxRetry < 0:
		return bad("MaxRetry", "%v, want > 0 (0: default %v)", c.MaxRetry, DefaultMaxRetry)
	case c.Retry > 0 && c.MaxRetry > 0 && c.MaxRetry < c.Retry:
		return bad("MaxRetry", "%v is below Retry %v", c.MaxRetry, c.Retry)
	case c.Ack != AckBroker && c.Ack != AckPlatform:
		return bad("Ack", "unknown mode %d, want AckBroker or AckPlatform", int(c.Ack))
	case c.AckTimeout < 0:
		return bad("AckTimeout", "%v, want > 0 (0: default %v)", c.AckTimeout, DefaultAckTimeout)
	case c.MaxUnacked < 0:
		return bad("MaxUnacked", "%d, want ≥ 1 (0: default)", c.MaxUnacked)
	case c.Ack != AckPlatform && c.AckTimeout != 0:
		return bad("AckTimeout", "set, but only AckPlatform uses it (Ack is %v)", c.Ack)
	case c.Ack != AckPlatform && c.MaxUnacked != 0:
		return bad("MaxUnacked", "set, but only AckPlatform uses it (Ack is %v)", c.Ack)
	}
	if c.Pacer != nil {
		if _, ok := c.Queue.(LastSeqer); !ok {
			return bad("Pacer", "a paced forwarder needs a Queue with LastSeq (%T has none)", c.Queue)
		}
	}
	return nil
}

// withDefaults returns a copy with every zero field set to its default:
// the one place defaults are applied.
func (c ForwarderConfig) withDefaults() ForwarderConfig {
	orDefault := func(v, d int) int {
		if v == 0 {
			return d
		}
		return v
	}
	c.MaxBatch = orDefault(c.MaxBatch, DefaultMaxBatch)
	c.Window = orDefault(c.Window, DefaultWindow)
	if c.Retry == 0 {
		c.Retry = DefaultRetry
	}
	if c.MaxRetry == 0 {
		c.MaxRetry = max(DefaultMaxRetry, c.Retry)
	}
	if c.Ack == AckPlatform {
		if c.AckTimeout == 0 {
			c.AckTimeout = DefaultAckTimeout
		}
		c.MaxUnacked = orDefault(c.MaxUnacked, DefaultUnackedBatches*c.Window*c.MaxBatch)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
