package rs485

import (
	"fmt"
	"strings"
)

// DecimalError reports a decimal string that ParseFixed cannot hold
// exactly. Callers wrap it with their own sentinel (ErrValue).
type DecimalError struct {
	Input  string // the string as given
	Reason string // "is not a decimal number", "has more than 2 decimals", …
}

func (e *DecimalError) Error() string { return fmt.Sprintf("%q %s", e.Input, e.Reason) }

// ParseFixed turns a decimal string ("-1.234", "+5", "123456.78") into an
// integer count of 10^-scale units, exactly: more fraction digits than
// scale, or more than intDigits integer digits, is a *DecimalError.
func ParseFixed(s string, scale, intDigits int) (int64, error) {
	in := s
	neg := false
	switch {
	case strings.HasPrefix(s, "-"):
		neg, s = true, s[1:]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	ip, fp, _ := strings.Cut(s, ".")
	if ip == "" && fp == "" {
		return 0, &DecimalError{in, "is not a decimal number"}
	}
	for _, c := range ip + fp {
		if c < '0' || c > '9' {
			return 0, &DecimalError{in, "is not a decimal number"}
		}
	}
	ip = strings.TrimLeft(ip, "0")
	if len(ip) > intDigits {
		return 0, &DecimalError{in, fmt.Sprintf("has more than %d integer digits", intDigits)}
	}
	fp = strings.TrimRight(fp, "0")
	if len(fp) > scale {
		return 0, &DecimalError{in, fmt.Sprintf("has more than %d decimals", scale)}
	}
	var v int64
	for _, c := range ip {
		v = v*10 + int64(c-'0')
	}
	for i := range scale {
		v *= 10
		if i < len(fp) {
			v += int64(fp[i] - '0')
		}
	}
	if neg {
		v = -v
	}
	return v, nil
}

// FormatFixed is the inverse of ParseFixed.
func FormatFixed(v int64, scale int) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	s := fmt.Sprintf("%0*d", scale+1, v)
	if scale == 0 {
		return sign + s
	}
	return sign + s[:len(s)-scale] + "." + s[len(s)-scale:]
}

// Pow10 is 10^n for 0 ≤ n ≤ 18.
func Pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

// Rescale turns v (10^-from units) into 10^-to units, rounding half away
// from zero when digits are dropped.
func Rescale(v int64, from, to int) int64 {
	if to >= from {
		return v * Pow10(to-from)
	}
	d := Pow10(from - to)
	if v < 0 {
		return -((-v + d/2) / d)
	}
	return (v + d/2) / d
}

// BCD encodes a non-negative v as n bytes of packed BCD, low byte first;
// digits beyond 2n are dropped.
func BCD(v int64, n int) []byte {
	b := make([]byte, n)
	for i := range n {
		lo := v % 10
		v /= 10
		hi := v % 10
		v /= 10
		b[i] = byte(hi<<4 | lo)
	}
	return b
}

// BCDByte encodes 0..99 as one BCD byte.
func BCDByte(v int) byte { return byte(v/10<<4 | v%10) }

// UnBCDByte decodes one BCD byte; ok is false for a nibble above 9.
func UnBCDByte(b byte) (int, bool) {
	hi, lo := int(b>>4), int(b&0x0F)
	return hi*10 + lo, hi <= 9 && lo <= 9
}
