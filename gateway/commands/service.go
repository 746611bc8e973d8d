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

// DefaultQueue is how many commands may wait to run; beyond it a command
// is answered overflow. They wait in the store, not in memory.
const DefaultQueue = 256

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
	Queue   int              // most commands waiting to run; default DefaultQueue
	Logger  *slog.Logger     // nil: discard
	Alarms  AlarmAcker       // the rules engine, for alarm-ack; nil: refused
}

// Service receives commands, runs them one at a time and answers each.
type Service struct {
	o    Options
	log  *slog.Logger
	wake chan struct{} // capacity 1: Receive stored a command
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
	return &Service{o: o, log: log, wake: make(chan struct{}, 1)}, nil
}

// Receive takes one payload from the cmd topic (the MQTT handler calls
// it). A well-formed command is stored in the seen table, waiting to run,
// before Receive returns, that is before the broker gets its PUBACK: a
// command acknowledged is never lost to a restart. A command already
// answered is answered again from the table; one already waiting is left
// to wait. A command that does not decode is answered malformed when its
// id can be read (dropped with a warning otherwise); one that finds Queue
// commands waiting is answered overflow.
func (s *Service) Receive(ctx context.Context, payload []byte) {
	cmd, err := wire.DecodeCommand(payload)
	if err != nil {
		id, ok := wire.CommandID(payload)
		if !ok {
			s.log.Warn("malformed command without a readable id: not answered", "err", err)
			return
		}
		s.log.Warn("malformed command", "cmd", id, "err", err)
		s.answerOnce(ctx, &wire.CommandResult{ID: id, Err: "malformed command: " + err.Error(), Status: wire.ResultMalformed})
		return
	}
	if s.known(ctx, cmd.ID) {
		return
	}
	if n := s.o.Seen.PendingLen(); n >= s.o.Queue {
		s.log.Warn("command not taken: too many commands waiting", "cmd", cmd.ID, "waiting", n)
		s.answer(ctx, &wire.CommandResult{ID: cmd.ID, Status: wire.ResultOverflow,
			Err: fmt.Sprintf("not run: %d commands were already waiting; send it again with a new id", n)})
		return
	}
	if err := s.o.Seen.PutPending(cmd.ID, payload); err != nil {
		s.log.Error("command not stored, so not run", "cmd", cmd.ID, "err", err)
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// known handles an id the table already holds: answered (again), or
// waiting or running (left alone). It reports whether there was one.
func (s *Service) known(ctx context.Context, id string) bool {
	e, ok, err := s.o.Seen.Get(id)
	switch {
	case err != nil:
		s.log.Error("seen table unreadable: command not taken", "cmd", id, "err", err)
		return true
	case !ok:
		return false
	case e.Result != nil && !e.Started: // (a started one is answered by Run)
		s.log.Info("command seen before: answered again, not run", "cmd", id)
		if err := s.o.Results.Append(context.WithoutCancel(ctx), e.Result); err != nil {
			s.log.Error("command result not queued", "cmd", id, "err", err)
		}
	}
	return true
}

// Run runs the waiting commands, oldest first and one at a time, until
// ctx ends. At start it answers the commands the last run stopped in
// (failed, outcome unknown) and runs those it left waiting.
func (s *Service) Run(ctx context.Context) error {
	for _, id := range s.o.Seen.Started() {
		if e, ok, err := s.o.Seen.Get(id); err == nil && ok && e.Started {
			s.log.Warn("the gateway stopped while a command ran: answered with its outcome unknown", "cmd", id)
			s.answerRaw(ctx, id, e.Result)
		}
	}
	for {
		for _, id := range s.o.Seen.Pending() {
			if ctx.Err() != nil {
				return nil
			}
			s.runPending(ctx, id)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		}
	}
}

func (s *Service) runPending(ctx context.Context, id string) {
	e, ok, err := s.o.Seen.Get(id)
	if err != nil {
		s.answer(ctx, &wire.CommandResult{ID: id, Status: wire.ResultFailed, Err: "not run: the command could not be read back from the store: " + err.Error()})
		return
	}
	if !ok || e.Command == nil {
		return // answered meanwhile
	}
	cmd, err := wire.DecodeCommand(e.Command)
	if err != nil {
		s.answer(ctx, &wire.CommandResult{ID: id, Status: wire.ResultMalformed, Err: "malformed command: " + err.Error()})
		return
	}
	s.Handle(ctx, cmd)
}

// Handle answers one decoded command: again from the seen table, or
// expired, or refused for an unsynced clock, or by running it.
func (s *Service) Handle(ctx context.Context, cmd *wire.Command) {
	log := s.log.With("cmd", cmd.ID, "op", cmd.Op, "dev", cmd.Dev)
	if e, ok, err := s.o.Seen.Get(cmd.ID); err != nil {
		log.Error("seen table unreadable: command not run", "err", err)
		return
	} else if ok && e.Result != nil {
		s.known(ctx, cmd.ID)
		return
	}
	timeout := s.o.Timeout
	if cmd.Expires > 0 {
		if !s.o.Synced() {
			s.answer(ctx, &wire.CommandResult{ID: cmd.ID, Status: wire.ResultRefused,
				Err: "not run: the gateway clock is not synchronised (check NTP/chrony), so it cannot tell whether the command has expired"})
			return
		}
		left := time.Duration(cmd.Expires-s.o.Now().UnixMilli()) * time.Millisecond
		if left <= 0 {
			log.Warn("command expired before it could run", "late", -left)
			s.answer(ctx, &wire.CommandResult{ID: cmd.ID, Status: wire.ResultExpired,
				Err: fmt.Sprintf("not run: expired %s before the gateway took it up", (-left).Round(time.Millisecond))})
			return
		}
		timeout = min(timeout, left)
	}
	// Remembered before it runs: if the gateway stops mid-way, this is
	// the answer (sent by the next Run), and the command never runs twice.
	unknown := &wire.CommandResult{ID: cmd.ID, Status: wire.ResultFailed,
		Err: "the gateway stopped while running this command; its outcome is unknown"}
	if !s.started(unknown) {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	vals, err := s.run(cctx, cmd)
	cancel()
	if ctx.Err() != nil {
		log.Warn("gateway stopping while a command ran; its outcome is unknown", "err", err)
		s.answer(ctx, unknown)
		return
	}
	res := &wire.CommandResult{ID: cmd.ID, OK: true, Status: wire.ResultDone, Vals: vals}
	if err != nil {
		res.OK, res.Err, res.Status = false, err.Error(), wire.ResultFailed
		if errors.Is(err, ErrRefused) {
			res.Status = wire.ResultRefused
		}
		log.Warn("command not done", "status", res.Status, "err", err)
	} else {
		log.Info("command done")
	}
	s.answer(ctx, res)
}

// started stores res as the answer to give if the run ends without one;
// false if it could not be stored (then the command must not run: it
// would run again after a restart).
func (s *Service) started(res *wire.CommandResult) bool {
	b, err := s.encode(res)
	if err != nil {
		return false
	}
	if err := s.o.Seen.PutStarted(res.ID, b); err != nil {
		s.log.Error("command not run: its id cannot be remembered", "cmd", res.ID, "err", err)
		return false
	}
	return true
}

// answer remembers res as the answer to its id and queues it for the
// platform (even while ctx ends: it is a local, durable write).
func (s *Service) answer(ctx context.Context, res *wire.CommandResult) {
	b, err := s.encode(res)
	if err != nil {
		return
	}
	s.answerRaw(ctx, res.ID, b)
}

func (s *Service) answerRaw(ctx context.Context, id string, b []byte) {
	if err := s.o.Seen.Put(id, b); err != nil {
		s.log.Error("command result not remembered", "cmd", id, "err", err)
	}
	if err := s.o.Results.Append(context.WithoutCancel(ctx), b); err != nil {
		s.log.Error("command result not queued", "cmd", id, "err", err)
	}
}

// answerOnce answers an id not taken (malformed, overflow) unless the table
// already holds it: the first answer stays an id's answer, and a command
// waiting to run will be answered when it has.
func (s *Service) answerOnce(ctx context.Context, res *wire.CommandResult) {
	if s.known(ctx, res.ID) {
		return
	}
	s.answer(ctx, res)
}

func (s *Service) encode(res *wire.CommandResult) ([]byte, error) {
	b, err := wire.EncodeCommandResult(res)
	if err != nil {
		s.log.Error("command result not encoded", "cmd", res.ID, "err", err)
	}
	return b, err
}
