package mqttpub

import (
	"fmt"
	"strconv"
	"time"
)

// outage counts the connection rounds in a row in which no broker
// answered, so that an unreachable county broker costs one readable log
// line per back-off step — "county broker unreachable (3rd try in a row),
// next try in 8s" — rather than the library's lines per attempt.
type outage struct {
	tries int
	since time.Time // first failed round
}

// failed records a failed round and returns its log message.
func (o *outage) failed(now time.Time, brokers int, next time.Duration) string {
	if o.tries == 0 {
		o.since = now
	}
	o.tries++
	what := "broker unreachable"
	if brokers > 1 {
		what = fmt.Sprintf("all %d brokers unreachable", brokers)
	}
	return fmt.Sprintf("mqttpub: %s (%s try in a row), next try in %s", what, Ordinal(o.tries), roundPause(next))
}

// recovered returns the message for the connection that ended the outage.
func (o *outage) recovered(now time.Time) string {
	return fmt.Sprintf("mqttpub: connected after %d failed %s (unreachable for %s)",
		o.tries, plural(o.tries, "try", "tries"), now.Sub(o.since).Round(time.Second))
}

// roundPause rounds a pause for people: whole seconds from 10s up,
// tenths below, milliseconds below a second.
func roundPause(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	default:
		return d.Round(time.Millisecond)
	}
}

// Ordinal returns n as an English ordinal: 1st, 2nd, 3rd, 4th, 11th, 22nd.
func Ordinal(n int) string {
	suffix := "th"
	switch n % 100 {
	case 11, 12, 13:
	default:
		switch n % 10 {
		case 1:
			suffix = "st"
		case 2:
			suffix = "nd"
		case 3:
			suffix = "rd"
		}
	}
	return strconv.Itoa(n) + suffix
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
