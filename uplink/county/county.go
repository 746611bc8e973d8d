package county

import (
	"context"
	"errors"
	"time"

	"github.com/townlink/townlink/uplink/wire"
)

// Errors of this package.
var (
	ErrConfig = errors.New("county: invalid configuration")
	ErrStore  = errors.New("county: store failed")
)

// Message is one MQTT message as the broker delivered it.
type Message struct {
	Topic    string
	Payload  []byte
	Received time.Time // when the broker handed it to this worker
}

// Batch is a decoded batch with the admin codes of the topic it came on.
type Batch struct {
	County, Township string
	*wire.Batch
	Received time.Time
	// SigChecked (evidence): the chain and signatures of this batch were
	// verified with the gateway's registered key.
	SigChecked bool
}

// Status is a decoded status with its topic's admin codes.
type Status struct {
	County, Township string
	*wire.Status
}

// Problem is one thing the ingest or the store found wrong; every problem
// becomes a row of the audit table.
type Problem struct {
	Topic  string
	GW     string // "" when the topic did not name one
	Stream string
	Seq    uint64 // 0 when no seq is known
	Kind   string // one of the Problem constants
	Detail string
	// Payload is the message as received, for a message that was refused
	// whole (malformed, identity): its records may be genuine, and the
	// gateway may not send them again (ack: broker).
	Payload []byte
}

// Problem kinds.
const (
	ProblemMalformed = "malformed" // the payload did not decode (wire.ErrMalformed, ErrSchema, ...)
	ProblemIdentity  = "identity"  // the payload names another gw or stream than its topic
	ProblemTopic     = "topic"     // not a Townlink topic
	ProblemChain     = "chain"     // evidence chain or signature broken (wire.ChainError)
	ProblemConflict  = "conflict"  // a seq received again with different contents
	ProblemRollback  = "rollback"  // a status announced a lower last_seq than before
)

// Commit is what one Handle call stores, in one transaction.
type Commit struct {
	Batches  []Batch
	Statuses []Status
	Problems []Problem
	// Quarantined are evidence records that failed the chain or signature
	// check (each with a Problem): kept apart, neither stored as rows nor
	// acknowledged, so that the gateway sends them again and a genuine
	// copy is stored; kept, so that nothing is lost when the gateway does
	// not wait for the platform's acknowledgement (ack: broker).
	Quarantined []Batch
}

// Progress is, for one (gateway, stream), the highest seq up to which every
// seq is stored as a row or covered by a gap record: what an "ack: platform"
// acknowledgement may carry.
type Progress struct {
	County, Township, GW, Stream string
	Upto                         uint64
}

// Result is what a Commit did.
type Result struct {
	Inserted   int // records stored for the first time
	Duplicates int // records already stored (identical copies), not stored again
	Conflicts  int // records already stored with different contents (audited)
	Problems   int // audit rows written
	// Progress of every (gateway, record stream) the commit touched,
	// after it.
	Progress []Progress
}

// Store keeps what the ingest decoded. Commit must be atomic and
// idempotent: a batch committed twice stores its records once.
type Store interface {
	Commit(ctx context.Context, c *Commit) (*Result, error)
}

// Publisher publishes one message at QoS 1 (mqttpub.Client does).
type Publisher interface {
	Publish(ctx context.Context, topic string, payload []byte) error
}
