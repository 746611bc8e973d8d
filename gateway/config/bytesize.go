package config

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// ByteSize is a size in bytes, written in the file as 65536, 64KiB, 512MiB
// or 2GiB (1024-based units; decimals such as 1.5GiB are fine when they come
// to whole bytes).
type ByteSize int64

// Byte size units.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
	TiB ByteSize = 1 << 40
)

var errByteSize = errors.New("config: bad byte size")

// ParseByteSize parses a size such as 65536, 64KiB, 2GiB or 1.5MiB.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	if num == "" {
		return 0, fmt.Errorf("%w: %q is not a size (write it like 65536, 64KiB, 512MiB or 2GiB)", errByteSize, s)
	}
	var mult ByteSize
	switch unit {
	case "", "B":
		mult = 1
	case "KiB", "Ki":
		mult = KiB
	case "MiB", "Mi":
		mult = MiB
	case "GiB", "Gi":
		mult = GiB
	case "TiB", "Ti":
		mult = TiB
	case "K", "k", "KB", "kB", "kb", "M", "MB", "mb", "G", "GB", "gb", "T", "TB", "tb":
		iec := strings.ToUpper(unit[:1]) + "iB"
		if unit[:1] == "k" {
			iec = "KiB"
		}
		return 0, fmt.Errorf("%w: %q: %s is ambiguous (1000 or 1024?); write %s%s for 1024-based units", errByteSize, s, unit, num, iec)
	default:
		return 0, fmt.Errorf("%w: %q has unknown unit %q (use B, KiB, MiB, GiB or TiB)", errByteSize, s, unit)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("%w: %q is not a size (write it like 65536, 64KiB, 512MiB or 2GiB)", errByteSize, s)
	}
	r.Mul(r, new(big.Rat).SetInt64(int64(mult)))
	if !r.IsInt() {
		return 0, fmt.Errorf("%w: %q is not a whole number of bytes", errByteSize, s)
	}
	if !r.Num().IsInt64() || r.Num().Int64() > int64(1<<62) {
		return 0, fmt.Errorf("%w: %q is too large", errByteSize, s)
	}
	return ByteSize(r.Num().Int64()), nil
}

// String formats the size in the largest unit that divides it exactly:
// 2GiB, 512MiB, 64KiB, 1000.
func (b ByteSize) String() string {
	if b == 0 {
		return "0"
	}
	for _, u := range []struct {
		n    ByteSize
		name string
	}{{TiB, "TiB"}, {GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if b%u.n == 0 {
			return strconv.FormatInt(int64(b/u.n), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10)
}
