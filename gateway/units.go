package gateway

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written in the config as a Go duration string:
// "30s", "1m30s", "250ms", "2h". Bare numbers are refused because their unit
// would be a guess.
type Duration time.Duration

// String formats d like time.Duration but drops zero trailing units:
// "1m" rather than "1m0s", "2h" rather than "2h0m0s".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(text)))
	if err != nil {
		return fmt.Errorf("invalid duration %q: want a number with a unit, like \"30s\", \"1m30s\" or \"250ms\"", text)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalTOML accepts a TOML string only (see Duration).
func (d *Duration) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("want a duration string like \"30s\", got %s", tomlTypeName(v))
	}
	return d.UnmarshalText([]byte(s))
}

// Size is a number of bytes. In the config it is a plain integer (bytes) or a
// string with a unit: "512B", "256KiB", "1MiB", "2GiB" (binary: 1024^n) or
// "16kB", "16MB", "1GB" (decimal: 1000^n). Negative sizes and fractions are
// refused.
type Size int64

// Size units.
const (
	Byte Size = 1
	KiB  Size = 1 << 10
	MiB  Size = 1 << 20
	GiB  Size = 1 << 30
	TiB  Size = 1 << 40
	KB   Size = 1000
	MB   Size = 1000 * KB
	GB   Size = 1000 * MB
	TB   Size = 1000 * GB
)

var sizeUnits = []struct {
	name string
	size Size
}{
	// Largest first: String picks the first that divides exactly.
	{"TiB", TiB}, {"TB", TB}, {"GiB", GiB}, {"GB", GB},
	{"MiB", MiB}, {"MB", MB}, {"KiB", KiB}, {"kB", KB},
	{"B", Byte},
}

// ParseSize parses a size such as "1048576", "512B", "256KiB", "1MiB" or "16MB".
// "KB" is accepted as a spelling of "kB" (1000 bytes).
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	if num == "" {
		if strings.HasPrefix(t, "-") {
			return 0, fmt.Errorf("invalid size %q: must not be negative", s)
		}
		return 0, fmt.Errorf("invalid size %q: want a number of bytes with an optional unit, like \"256KiB\", \"1MiB\" or \"16MB\"", s)
	}
	mult := Byte
	if unit != "" {
		if unit == "KB" {
			unit = "kB"
		}
		found := false
		for _, u := range sizeUnits {
			if u.name == unit {
				mult, found = u.size, true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("invalid size %q: unknown unit %q (use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB)", s, unit)
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/int64(mult) {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return Size(n) * mult, nil
}

// String formats s with the largest unit that divides it exactly, so that
// ParseSize(s.String()) == s.
func (s Size) String() string {
	if s > 0 {
		for _, u := range sizeUnits {
			if s%u.size == 0 {
				return strconv.FormatInt(int64(s/u.size), 10) + u.name
			}
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// MarshalText implements encoding.TextMarshaler.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Size) UnmarshalText(text []byte) error {
	v, err := ParseSize(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// UnmarshalTOML accepts a TOML integer (bytes) or a string (see ParseSize).
func (s *Size) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return errors.New("invalid size: must not be negative")
		}
		*s = Size(v)
		return nil
	case string:
		return s.UnmarshalText([]byte(v))
	default:
		return fmt.Errorf("want a size (bytes, or a string like \"256KiB\"), got %s", tomlTypeName(v))
	}
}

// tomlTypeName names the TOML type of a decoded value for error messages.
func tomlTypeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a datetime"
	case []map[string]any, []any:
		return "an array"
	case map[string]any:
		return "a table"
	default:
		return fmt.Sprintf("a %T", v)
	}
}
