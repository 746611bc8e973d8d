package kiosksim

import (
	"context"
	"errors"

	"github.com/townlink/townlink/firmware-sim/internal/fielddev"
)

// ErrOptions reports unusable options.
var ErrOptions = errors.New("kiosksim: bad options")

// ErrBroker reports a broker that could not be reached or refused a publish.
var ErrBroker = errors.New("kiosksim: broker")

type conn = fielddev.Conn

func checkBroker(s string) error { return fielddev.CheckBroker(s, ErrOptions) }

func dial(ctx context.Context, broker, id, user, pass, willTopic string, will []byte) (*conn, error) {
	return fielddev.Dial(ctx, ErrBroker, broker, id, user, pass, willTopic, will)
}
