package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/townlink/townlink/gateway/config"
	"github.com/townlink/townlink/uplink/wire"
)

// DefaultTimeout bounds how long one command may run (and hold a line).
const DefaultTimeout = 30 * time.Second

// DefaultQueue is how many decoded commands may wait to be run; beyond it a
// command is answered overflow.
const DefaultQueue = 64

// ErrRefused wraps why a command was not run (answered refused).
var ErrRefused = errors.New("command refused")

// ErrOptions reports invalid Options.
var ErrOptions = errors.New("commands: invalid options")

// Results is where answers go: the durable cmd-result queue (a
// badgerq.Queue). Append returns once they are on disk.
type Results interface {
	Append(ctx context.Context, data ...[]byte) error
}

// Options are what the command path needs from the gateway.
type Options struct {
	Config  *config.Config    // the running config: devices, outputs, lines, and the config op
	Devices map[string]Device // devices that read and set reach, by id
	Lines   map[string]Doer   // line owners by line name (time-sync)
	Results Results           // required
	Seen    *Seen             // required
	Boot    string            // boot id, for ping
	Version string            // gateway version, for ping

	Now     func() time.Time // default time.Now
	Synced  func() bool      // is the clock synchronised; required (clock.Synced)
	Timeout time.Duration    // default DefaultTimeout
	Queue   int              // default DefaultQueue
	Logger  *slog.Logger     // nil: discard
}

// Service receives commands, runs them one at a time and answers each.
type Service struct {
	o   Options
	log *slog.Logger
	q   chan *wire.Command
}

// New checks o and returns the service; it does no I/O.
func New(o Options) (*Service, error) {
	switch {
	case o.Config == nil:
		return nil, fmt.Errorf("%w: Config is nil", ErrOptions)
	case o.Results == nil:
		return nil, fmt.Errorf("%w: Results is nil", ErrOptions)
	case o.Seen == nil:
		return nil, fmt.Errorf("%w: Seen is nil", ErrOptions)
	case o.Synced == nil:
		return nil, fmt.Errorf("%w: Synced is nil", ErrOptions)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{o: o, log: log, q: make(chan *wire.Command, o.Queue)}, nil
}

// Receive takes one payload from the cmd topic (the MQTT handler calls
// it). A command that does not decode is answered malformed when its id
// can be read (dropped with a warning otherwise); one that finds the queue
// full is answered overflow. Both answers are durable before Receive
// returns, that is before the broker gets its PUBACK.
func (s *Service) Receive(ctx context.Context, payload []byte) {
	cmd, err := wire.DecodeCommand(payload)
	if err != nil {
		id, ok := wire.CommandID(payload)
		if !ok {
			s.log.Warn("malformed command without a readable id: not answered", "err", err)
			return
		}
		s.log.Warn("malformed command", "cmd", id, "err", err)
		s.answer(ctx, &wire.CommandResult{ID: id, Err: "malformed command: " + err.Error(), Status: wire.StatusMalformed})
		return
	}
	select {
	case s.q <- cmd:
	default:
		s.log.Warn("command not queued: too many commands waiting", "cmd", cmd.ID, "waiting", cap(s.q))
		s.answer(ctx, &wire.CommandResult{ID: cmd.ID, Status: wire.StatusOverflow,
			Err: fmt.Sprintf("not run: %d commands were already waiting; send it again with a new id", cap(s.q))})
	}
}

// Run handles queued commands, one at a time, until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case cmd := <-s.q:
			s.Handle(ctx, cmd)
		}
	}
}

// Handle answers one decoded command: again from the seen table, or
// expired, or refused for an unsynced clock, or by running it.
func (s *Service) Handle(ctx context.Context, cmd *wire.Command) {
	log := s.log.With("cmd", cmd.ID, "op", cmd.Op, "dev", cmd.Dev)
	if prev, ok, err := s.o.Seen.Get(cmd.ID); err != nil {
		log.Error("seen table unreadable: command not run", "err", err)
		return
	} else if ok {
		log.Info("command seen before: answered again, not run")
		if err := s.o.Results.Append(ctx, prev); err != nil {
			log.Error("command result not queued", "err", err)
		}
		return
	}
	timeout := s.o.Timeout
	if cmd.Expires > 0 {
		if !s.o.Synced() {
			s.answer(ctx, &wire.CommandResult{ID: cmd.ID, Status: wire.StatusRefused,
				Err: "not run: the gateway clock is not synchronised (check NTP/chrony), so it cannot tell whether the command has expired"})
			return
		}
		left := time.Duration(cmd.Expires-s.o.Now().UnixMilli()) * time.Millisecond
		if left <= 0 {
			log.Warn("command expired before it could run", "late", -left)
			s.answer(ctx, &wire.CommandResult{ID: cmd.ID, Status: wire.StatusExpired,
				Err: fmt.Sprintf("not run: expired %s before the gateway took it up", (-left).Round(time.Millisecond))})
			return
		}
		timeout = min(timeout, left)
	}
	// Remembered before it runs: if the gateway stops mid-way, a redelivery
	// is answered with this, never run a second time.
	if !s.remember(ctx, &wire.CommandResult{ID: cmd.ID, Status: wire.StatusFailed,
		Err: "the gateway stopped while running this command; its outcome is unknown"}) {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	vals, err := s.run(cctx, cmd)
	cancel()
	res := &wire.CommandResult{ID: cmd.ID, OK: true, Status: wire.StatusDone, Vals: vals}
	if err != nil {
		res.OK, res.Err, res.Status = false, err.Error(), wire.StatusFailed
		if errors.Is(err, ErrRefused) {
			res.Status = wire.StatusRefused
		}
		log.Warn("command not done", "status", res.Status, "err", err)
	} else {
		log.Info("command done")
	}
	s.answer(ctx, res)
}

// remember stores res as the answer to its id; false if it could not be
// stored (then the command must not run: a redelivery would run it again).
func (s *Service) remember(ctx context.Context, res *wire.CommandResult) bool {
	b, err := s.encode(res)
	if err != nil {
		return false
	}
	if err := s.o.Seen.Put(res.ID, b); err != nil {
		s.log.Error("command not run: its id cannot be remembered", "cmd", res.ID, "err", err)
		return false
	}
	return true
}

// answer remembers res and queues it for the platform. The first answer
// stored for an id stays its answer: a malformed or overflowing
// redelivery does not replace it.
func (s *Service) answer(ctx context.Context, res *wire.CommandResult) {
	log := s.log.With("cmd", res.ID, "status", res.Status)
	b, err := s.encode(res)
	if err != nil {
		return
	}
	if res.Status == wire.StatusMalformed || res.Status == wire.StatusOverflow {
		if prev, ok, err := s.o.Seen.Get(res.ID); err == nil && ok {
			b = prev
		} else if err := s.o.Seen.Put(res.ID, b); err != nil {
			log.Error("command result not remembered", "err", err)
		}
	} else if err := s.o.Seen.Put(res.ID, b); err != nil {
		log.Error("command result not remembered", "err", err)
	}
	if err := s.o.Results.Append(ctx, b); err != nil {
		log.Error("command result not queued", "err", err)
	}
}

func (s *Service) encode(res *wire.CommandResult) ([]byte, error) {
	b, err := wire.EncodeCommandResult(res)
	if err != nil {
		s.log.Error("command result not encoded", "cmd", res.ID, "err", err)
	}
	return b, err
}
