package dlt645

import (
	"errors"
	"fmt"
	"strings"
)

// Frame errors. Each is also a drivers.ErrFrame when it comes out of a
// transaction.
var (
	ErrShort    = errors.New("dlt645: frame too short")
	ErrStart    = errors.New("dlt645: no 68 start byte")
	ErrLength   = errors.New("dlt645: bad length")
	ErrChecksum = errors.New("dlt645: bad checksum")
	ErrEnd      = errors.New("dlt645: bad end byte")
	ErrAddress  = errors.New("dlt645: bad address")
)

// Reply and value errors.
var (
	// ErrWrongAddress: a meter other than the one asked answered.
	ErrWrongAddress = errors.New("dlt645: reply from another address")
	// ErrUnexpected: a reply that does not answer the request (other
	// function, other DI, other follow-up sequence number).
	ErrUnexpected = errors.New("dlt645: unexpected reply")
	// ErrValue: value bytes that do not fit the item (length, BCD, date).
	ErrValue = errors.New("dlt645: bad value")
	// ErrNoAnswer: Probe got no answer in either protocol version.
	ErrNoAnswer = errors.New("dlt645: no meter answered")
)

// Abnormal-reply sentinels. An *AbnormalError matches (errors.Is) every
// sentinel whose bit is set, and always ErrAbnormal.
var (
	ErrAbnormal     = errors.New("dlt645: abnormal reply")
	ErrOther        = errors.New("dlt645: other error")                     // 2007 bit 0
	ErrNoData       = errors.New("dlt645: no requested data")               // 2007 bit 1; 1997 bit 1 (wrong DI)
	ErrPassword     = errors.New("dlt645: wrong password or unauthorised")  // bit 2
	ErrBaud         = errors.New("dlt645: baud rate cannot be changed")     // 2007 bit 3
	ErrYearZones    = errors.New("dlt645: too many year time zones")        // bit 4
	ErrDailyPeriods = errors.New("dlt645: too many daily periods")          // bit 5
	ErrTariffs      = errors.New("dlt645: too many tariffs")                // bit 6
	ErrIllegalData  = errors.New("dlt645: illegal data (1997 error bit 0)") // 1997 bit 0
)

// AbnormalError is an abnormal reply (control code with D6 set, e.g. 0xD1
// for a 2007 read or 0xC1 for a 1997 read) and its error byte (SERR,
// after −0x33).
type AbnormalError struct {
	Control byte
	Bits    byte
}

// v1997 reports a 1997 control code (functions 0x01..0x10); 2007 data
// functions start at 0x11.
func (e *AbnormalError) v1997() bool { return e.Control&FuncMask < FuncRead }

func (e *AbnormalError) bitErrors() [8]error {
	if e.v1997() {
		// DL/T 645-1997 error byte [unsure: protocols.md §2].
		return [8]error{ErrIllegalData, ErrNoData, ErrPassword, nil, ErrYearZones, ErrDailyPeriods, ErrTariffs, nil}
	}
	return [8]error{ErrOther, ErrNoData, ErrPassword, ErrBaud, ErrYearZones, ErrDailyPeriods, ErrTariffs, nil}
}

// Errors lists the sentinels of the bits set.
func (e *AbnormalError) Errors() []error {
	var out []error
	for i, s := range e.bitErrors() {
		if s != nil && e.Bits&(1<<i) != 0 {
			out = append(out, s)
		}
	}
	return out
}

func (e *AbnormalError) Error() string {
	var parts []string
	for _, s := range e.Errors() {
		parts = append(parts, strings.TrimPrefix(s.Error(), "dlt645: "))
	}
	if e.Bits&0x80 != 0 || (e.v1997() && e.Bits&0x08 != 0) {
		parts = append(parts, "reserved bit")
	}
	if len(parts) == 0 {
		parts = append(parts, "no error bit set")
	}
	return fmt.Sprintf("dlt645: abnormal reply %02X, error byte %02X: %s", e.Control, e.Bits, strings.Join(parts, ", "))
}

// Is matches ErrAbnormal and the sentinel of every bit set.
func (e *AbnormalError) Is(target error) bool {
	if target == ErrAbnormal {
		return true
	}
	for _, s := range e.Errors() {
		if s == target {
			return true
		}
	}
	return false
}
