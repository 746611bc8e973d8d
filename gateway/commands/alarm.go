package commands

import (
	"context"
	"fmt"

	"github.com/townlink/townlink/uplink/wire"
)

// AlarmAcker acknowledges an active alarm (the rules engine): the
// acknowledgement is recorded, the alarm stays until its condition clears.
type AlarmAcker interface {
	Ack(ctx context.Context, id, by string) error
}

// alarmAck runs alarm-ack: args alarm_id (text), optional by (text).
func (s *Service) alarmAck(ctx context.Context, cmd *wire.Command) (map[string]wire.Value, error) {
	if s.o.Alarms == nil {
		return nil, fmt.Errorf("%w: alarm-ack: this gateway has no rules", ErrRefused)
	}
	id, ok := cmd.Args["alarm_id"].AsText()
	if !ok || id == "" {
		return nil, fmt.Errorf("%w: alarm-ack needs args.alarm_id (text), the id of an active alarm", ErrRefused)
	}
	by, _ := cmd.Args["by"].AsText()
	if err := s.o.Alarms.Ack(ctx, id, by); err != nil {
		return nil, fmt.Errorf("%w: alarm-ack: %w", ErrRefused, err)
	}
	return map[string]wire.Value{"alarm_id": wire.Text(id), "acked": wire.Bool(true)}, nil
}
