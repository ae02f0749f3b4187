package serialbus

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Golden fixtures live in testdata/{bridge,xbee,raw}/*.hex; the README.md in
// each folder gives the format, which the C tests of firmware/ read too.

type fixture struct {
	file, name, desc string
	mode             string // xbee: api1 or api2
	noncanonical     bool   // the bytes hold more than the frame's encoding
	max              int
	events           []string // "expect: ..." or "error: ..." lines, in order
	data             []byte
}

func loadFixtures(t testing.TB, dir string) []*fixture {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.hex"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in testdata/%s: %v", dir, err)
	}
	var all []*fixture
	names := map[string]bool{}
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		var cur *fixture
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		ln := 0
		for sc.Scan() {
			ln++
			line := strings.TrimSpace(sc.Text())
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("%s:%d: %s", file, ln, fmt.Sprintf(format, args...))
			}
			switch {
			case line == "" || strings.HasPrefix(line, "#"):
			case strings.HasPrefix(line, "=== "):
				cur = &fixture{file: filepath.Base(file), name: strings.TrimPrefix(line, "=== ")}
				if names[cur.name] {
					fail("duplicate case %q", cur.name)
				}
				names[cur.name] = true
				all = append(all, cur)
			case cur == nil:
				fail("content before the first case")
			case strings.HasPrefix(line, "desc: "):
				cur.desc = strings.TrimPrefix(line, "desc: ")
			case line == "canonical: no":
				cur.noncanonical = true
			case strings.HasPrefix(line, "mode: "):
				cur.mode = strings.TrimPrefix(line, "mode: ")
			case strings.HasPrefix(line, "max: "):
				cur.max, err = strconv.Atoi(strings.TrimPrefix(line, "max: "))
				if err != nil {
					fail("max: %v", err)
				}
			case strings.HasPrefix(line, "expect: "), strings.HasPrefix(line, "error: "):
				cur.events = append(cur.events, line)
			default:
				if i := strings.IndexByte(line, '#'); i >= 0 {
					line = line[:i]
				}
				b, err := hex.DecodeString(strings.Join(strings.Fields(line), ""))
				if err != nil {
					fail("hex: %v", err)
				}
				cur.data = append(cur.data, b...)
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	for _, fx := range all {
		if len(fx.data) == 0 || len(fx.events) == 0 || fx.desc == "" {
			t.Fatalf("%s: case %q needs a desc, hex bytes and at least one expect: or error:", fx.file, fx.name)
		}
	}
	return all
}

// single reports whether the case is one frame that encodes back to its
// bytes.
func (fx *fixture) single() bool {
	return !fx.noncanonical && len(fx.events) == 1 && strings.HasPrefix(fx.events[0], "expect: ")
}

func errName(err error) string {
	for _, e := range []struct {
		err  error
		name string
	}{
		{ErrFrameTooLong, "FrameTooLong"},
		{ErrChecksum, "Checksum"},
		{ErrBadEscape, "BadEscape"},
		{ErrTruncated, "Truncated"},
		{ErrBadLength, "BadLength"},
		{ErrMalformed, "Malformed"},
		{ErrUnknownType, "UnknownType"},
	} {
		if errors.Is(err, e.err) {
			return e.name
		}
	}
	return "unexpected error " + err.Error()
}

// event is one output of a stream decoder: a copy of a frame, or an error.
type event struct {
	frame []byte
	err   error
}

func (e event) String() string {
	if e.err != nil {
		return "error " + errName(e.err)
	}
	return fmt.Sprintf("frame %x", e.frame)
}

// feed runs the chunks through d and returns every event.
func feed(d frameDecoder, chunks ...[]byte) []event {
	var evs []event
	for _, p := range chunks {
		for len(p) > 0 {
			frame, n, err := d.Next(p)
			if n < 0 || n > len(p) {
				panic(fmt.Sprintf("Next consumed %d of %d bytes", n, len(p)))
			}
			if frame == nil && err == nil && n != len(p) {
				panic(fmt.Sprintf("Next stopped at %d of %d bytes with nothing to report", n, len(p)))
			}
			p = p[n:]
			switch {
			case frame != nil && err != nil:
				panic("Next returned a frame and an error")
			case err != nil:
				evs = append(evs, event{err: err})
			case frame != nil:
				evs = append(evs, event{frame: append([]byte(nil), frame...)})
			}
		}
	}
	return evs
}

func hexs(p []byte) string { return hex.EncodeToString(p) }

func renderBridge(f *BridgeFrame) string {
	switch f.Type {
	case BridgeTxData:
		return fmt.Sprintf("TX_DATA id=%d radius=%d node=%s data=%s", f.FrameID, f.Radius, hexs(f.Node), hexs(f.Data))
	case BridgeRxData:
		return fmt.Sprintf("RX_DATA rssi=%d snr=%d radius=%d node=%s data=%s", f.RSSI, f.SNR, f.Radius, hexs(f.Node), hexs(f.Data))
	case BridgeTxStatus:
		result := "sent"
		if f.Failed {
			result = "failed"
		}
		return fmt.Sprintf("TX_STATUS id=%d result=%s reason=%d", f.FrameID, result, f.Reason)
	case BridgeStatus:
		in := f.Info
		return fmt.Sprintf("STATUS version=%d max=%d freq=%d bw=%d sf=%d cr=%d power=%d firmware=%q",
			in.Version, in.MaxDatagram, in.FrequencyHz, in.BandwidthHz, in.SpreadingFactor, in.CodingRate, in.TxPowerDBm, in.Firmware)
	}
	return f.Type.String()
}

func renderXBee(f *XBeeFrame) string {
	cmd := string(f.Command[:])
	switch f.Type {
	case XBeeTX64:
		return fmt.Sprintf("TX64 id=%d dst64=%016x options=%d data=%s", f.FrameID, f.Addr64, f.Options, hexs(f.Data))
	case XBeeTX16:
		return fmt.Sprintf("TX16 id=%d dst16=%04x options=%d data=%s", f.FrameID, f.Addr16, f.Options, hexs(f.Data))
	case XBeeATCommand:
		return fmt.Sprintf("AT id=%d cmd=%s param=%s", f.FrameID, cmd, hexs(f.Data))
	case XBeeTransmitRequest:
		return fmt.Sprintf("TRANSMIT_REQUEST id=%d dst64=%016x dst16=%04x radius=%d options=%d data=%s", f.FrameID, f.Addr64, f.Addr16, f.Radius, f.Options, hexs(f.Data))
	case XBeeRX64:
		return fmt.Sprintf("RX64 src64=%016x rssi=%d options=%d data=%s", f.Addr64, f.RSSI, f.Options, hexs(f.Data))
	case XBeeRX16:
		return fmt.Sprintf("RX16 src16=%04x rssi=%d options=%d data=%s", f.Addr16, f.RSSI, f.Options, hexs(f.Data))
	case XBeeATResponse:
		return fmt.Sprintf("AT_RESPONSE id=%d cmd=%s status=%d value=%s", f.FrameID, cmd, f.Status, hexs(f.Data))
	case XBeeTXStatus:
		return fmt.Sprintf("TX_STATUS id=%d status=%d", f.FrameID, f.Status)
	case XBeeModemStatus:
		return fmt.Sprintf("MODEM_STATUS status=%d", f.Status)
	case XBeeTransmitStatus:
		return fmt.Sprintf("TRANSMIT_STATUS id=%d dst16=%04x retries=%d delivery=%d discovery=%d", f.FrameID, f.Addr16, f.Retries, f.Status, f.Discovery)
	case XBeeReceivePacket:
		return fmt.Sprintf("RECEIVE_PACKET src64=%016x src16=%04x options=%d data=%s", f.Addr64, f.Addr16, f.Options, hexs(f.Data))
	}
	return f.Type.String()
}

// describe turns decoder events into fixture lines, decoding each frame
// with decode.
func describe(evs []event, decode func([]byte) (string, error)) []string {
	var out []string
	for _, e := range evs {
		if e.err != nil {
			out = append(out, "error: "+errName(e.err))
			continue
		}
		s, err := decode(e.frame)
		if err != nil {
			out = append(out, "error: "+errName(err))
			continue
		}
		out = append(out, "expect: "+s)
	}
	return out
}

func checkEvents(t *testing.T, fx *fixture, got []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(fx.events, "\n") {
		t.Errorf("%s: %s (%s)\ngot:\n  %s\nwant:\n  %s", fx.file, fx.name, fx.desc,
			strings.Join(got, "\n  "), strings.Join(fx.events, "\n  "))
	}
}

func decodeBridgeString(b []byte) (string, error) {
	f, err := DecodeBridge(b)
	if err != nil {
		return "", err
	}
	return renderBridge(&f), nil
}

func decodeXBeeString(b []byte) (string, error) {
	f, err := DecodeXBee(b)
	if err != nil {
		return "", err
	}
	return renderXBee(&f), nil
}

func decodeRawString(b []byte) (string, error) { return "PACKET data=" + hexs(b), nil }

func TestBridgeFixtures(t *testing.T) {
	for _, fx := range loadFixtures(t, "bridge") {
		t.Run(fx.name, func(t *testing.T) {
			for _, chunk := range []int{len(fx.data), 1, 3} {
				d := &BridgeDecoder{Max: fx.max}
				checkEvents(t, fx, describe(feed(d, split(fx.data, chunk)...), decodeBridgeString))
			}
			if !fx.single() {
				return
			}
			body := feed(&BridgeDecoder{}, fx.data)[0].frame
			f, err := DecodeBridge(body)
			if err != nil {
				t.Fatal(err)
			}
			wire, err := AppendBridge(nil, &f)
			if err != nil {
				t.Fatal(err)
			}
			if !equalBytes(wire, fx.data) {
				t.Errorf("re-encoded:\n %x\nwant\n %x", wire, fx.data)
			}
		})
	}
}

func TestXBeeFixtures(t *testing.T) {
	for _, fx := range loadFixtures(t, "xbee") {
		t.Run(fx.name, func(t *testing.T) {
			escaped := false
			switch fx.mode {
			case "api1":
			case "api2":
				escaped = true
			default:
				t.Fatalf("mode %q, want api1 or api2", fx.mode)
			}
			for _, chunk := range []int{len(fx.data), 1, 2} {
				d := &XBeeDecoder{Escaped: escaped, Max: fx.max}
				checkEvents(t, fx, describe(feed(d, split(fx.data, chunk)...), decodeXBeeString))
			}
			if !fx.single() {
				return
			}
			data := feed(&XBeeDecoder{Escaped: escaped}, fx.data)[0].frame
			f, err := DecodeXBee(data)
			if err != nil {
				t.Fatal(err)
			}
			wire, err := AppendXBee(nil, &f, escaped)
			if err != nil {
				t.Fatal(err)
			}
			if !equalBytes(wire, fx.data) {
				t.Errorf("re-encoded:\n %x\nwant\n %x", wire, fx.data)
			}
			if generic, _ := AppendXBeeAPI(nil, data, escaped); !equalBytes(generic, fx.data) {
				t.Errorf("AppendXBeeAPI:\n %x\nwant\n %x", generic, fx.data)
			}
		})
	}
}

func TestRawFixtures(t *testing.T) {
	for _, fx := range loadFixtures(t, "raw") {
		t.Run(fx.name, func(t *testing.T) {
			for _, chunk := range []int{len(fx.data), 1, 2} {
				d := &RawDecoder{Max: fx.max}
				checkEvents(t, fx, describe(feed(d, split(fx.data, chunk)...), decodeRawString))
			}
			for _, e := range feed(&RawDecoder{Max: fx.max}, fx.data) {
				if e.frame == nil {
					continue
				}
				if out, err := AppendRaw(nil, e.frame); err != nil || !equalBytes(out, e.frame) {
					t.Errorf("AppendRaw(%x) = %x, %v", e.frame, out, err)
				}
			}
		})
	}
}

// split cuts p into chunks of n bytes (the last may be shorter).
func split(p []byte, n int) [][]byte {
	if n <= 0 {
		n = 1
	}
	var out [][]byte
	for len(p) > n {
		out = append(out, p[:n])
		p = p[n:]
	}
	return append(out, p)
}

func equalBytes(a, b []byte) bool { return string(a) == string(b) }
