package gateway

import (
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	good := []struct {
		in   string
		want Size
	}{
		{"0", 0},
		{"1", 1},
		{"1048576", 1 << 20},
		{"512B", 512},
		{"256KiB", 256 << 10},
		{"1MiB", 1 << 20},
		{"2GiB", 2 << 30},
		{"1TiB", 1 << 40},
		{"16kB", 16000},
		{"16KB", 16000},
		{"16MB", 16000000},
		{"3GB", 3000000000},
		{"2TB", 2000000000000},
		{" 16 MiB ", 16 << 20},
		{"8589934591GiB", 8589934591 << 30}, // 2^63 - 2^30: the most whole GiB that fit
	}
	for _, tc := range good {
		got, err := ParseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	bad := []struct{ in, want string }{
		{"", "want a number of bytes"},
		{"MiB", "want a number of bytes"},
		{"-1", "must not be negative"},
		{"-1MiB", "must not be negative"},
		{"1.5MiB", `unknown unit ".5MiB"`},
		{"16mb", `unknown unit "mb"`},
		{"16 M", `unknown unit "M"`},
		{"16MiBs", `unknown unit "MiBs"`},
		{"1e6", `unknown unit "e6"`},
		{"0x10", `unknown unit "x10"`},
		{"8589934592GiB", "too large"},
		{"99999999999999999999", "too large"},
	}
	for _, tc := range bad {
		got, err := ParseSize(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSize(%q) = %d, %v; want an error containing %q", tc.in, got, err, tc.want)
		}
	}
}

func TestSizeString(t *testing.T) {
	for _, tc := range []struct {
		in   Size
		want string
	}{
		{0, "0B"},
		{1, "1B"},
		{1000, "1kB"},
		{1023, "1023B"},
		{1024, "1KiB"},
		{1 << 20, "1MiB"},
		{16000000, "16MB"},
		{3 << 30, "3GiB"},
		{1<<20 + 1, "1048577B"},
	} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("Size(%d).String() = %q; want %q", int64(tc.in), got, tc.want)
		}
		back, err := ParseSize(tc.in.String())
		if err != nil || back != tc.in {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in.String(), back, err, int64(tc.in))
		}
	}
}

func TestSizeUnmarshalTOML(t *testing.T) {
	var s Size
	if err := s.UnmarshalTOML(int64(4096)); err != nil || s != 4096 {
		t.Errorf("integer: got %d, %v", s, err)
	}
	if err := s.UnmarshalTOML("4KiB"); err != nil || s != 4096 {
		t.Errorf("string: got %d, %v", s, err)
	}
	for _, v := range []any{int64(-1), 1.5, true} {
		if err := s.UnmarshalTOML(v); err == nil {
			t.Errorf("UnmarshalTOML(%#v) accepted", v)
		}
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		str  string
	}{
		{"30s", 30 * time.Second, "30s"},
		{"0s", 0, "0s"},
		{"0", 0, "0s"},
		{"250ms", 250 * time.Millisecond, "250ms"},
		{"1m", time.Minute, "1m"},
		{"1m30s", 90 * time.Second, "1m30s"},
		{"2h", 2 * time.Hour, "2h"},
		{"1h0m5s", time.Hour + 5*time.Second, "1h0m5s"},
		{"168h", 168 * time.Hour, "168h"},
		{"-1s", -time.Second, "-1s"},
	} {
		var d Duration
		if err := d.UnmarshalText([]byte(tc.in)); err != nil || time.Duration(d) != tc.want {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", tc.in, time.Duration(d), err, tc.want)
			continue
		}
		if d.String() != tc.str {
			t.Errorf("Duration(%v).String() = %q; want %q", tc.want, d.String(), tc.str)
		}
		var back Duration
		if err := back.UnmarshalText([]byte(d.String())); err != nil || back != d {
			t.Errorf("round trip of %q: %v, %v", d.String(), back, err)
		}
	}
	for _, in := range []string{"", "30", "10 seconds", "1d", "s"} {
		var d Duration
		if err := d.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("UnmarshalText(%q) accepted as %v", in, time.Duration(d))
		}
	}
	var d Duration
	if err := d.UnmarshalTOML(int64(30)); err == nil || !strings.Contains(err.Error(), "got an integer") {
		t.Errorf("UnmarshalTOML(30) = %v; want an error about the integer", err)
	}
}
