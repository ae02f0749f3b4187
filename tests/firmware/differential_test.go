//go:build linux

package firmware_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// The C decoder and the Go decoder agree on every datagram: the golden
// fixtures (valid and invalid), the Go fuzzer's corpus, and thousands of
// mutations of them (bytes changed, inserted, removed, Length fields
// rewritten). For each one both accept it with the same value and encode it
// to the same bytes, or both reject it with the same kind of error. The C
// side runs under AddressSanitizer and UndefinedBehaviorSanitizer.
func TestFirmwareDecoderMatchesGo(t *testing.T) {
	root := bridgeRoot(t)
	mk := bridgePeer(t, "make")
	bridgePeer(t, "cc")
	dir := t.TempDir()
	tool := filepath.Join(dir, "mqttsn-decode")
	bridgeRun(t, root, mk, "-s", "-C", "firmware", "BUILD="+dir, tool)

	seeds := fixtureDatagrams(t, filepath.Join(root, "mqttsn", "packet", "testdata"))
	seeds = append(seeds, fuzzCorpus(t, filepath.Join(root, "mqttsn", "packet", "testdata", "fuzz", "FuzzDecode"))...)
	if len(seeds) < 100 {
		t.Fatalf("only %d seeds", len(seeds))
	}
	inputs := append([][]byte(nil), seeds...)
	rng := rand.New(rand.NewPCG(7, 11))
	for _, s := range seeds {
		for range 150 {
			inputs = append(inputs, mutate(rng, s))
		}
	}

	var stdin bytes.Buffer
	for _, in := range inputs {
		stdin.WriteString(hex.EncodeToString(in))
		stdin.WriteByte('\n')
	}
	cmd := exec.Command(tool)
	cmd.Stdin = &stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mqttsn-decode: %v\n%s", err, stderr.String())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1024*1024), 1024*1024)
	i, valid, mismatches := 0, 0, 0
	for ; sc.Scan() && i < len(inputs); i++ {
		got, want := sc.Text(), goDecode(inputs[i])
		if strings.HasPrefix(want, "ok ") {
			valid++
		}
		if got != want {
			mismatches++
			if mismatches <= 10 {
				t.Errorf("datagram %x:\n C: %s\nGo: %s", inputs[i], got, want)
			}
		}
	}
	if i != len(inputs) {
		t.Fatalf("mqttsn-decode answered %d of %d datagrams", i, len(inputs))
	}
	if mismatches > 0 {
		t.Fatalf("%d of %d datagrams decode differently", mismatches, len(inputs))
	}
	t.Logf("%d datagrams, %d valid, decoded alike", len(inputs), valid)
}

var errorKinds = []struct {
	err  error
	kind string
}{
	{packet.ErrTruncated, "truncated"},
	{packet.ErrLength, "length"},
	{packet.ErrTrailing, "trailing"},
	{packet.ErrUnknownType, "unknown_type"},
	{packet.ErrFlags, "flags"},
	{packet.ErrQoS, "qos"},
	{packet.ErrTopicIDType, "topic_id_type"},
	{packet.ErrProtocolID, "protocol_id"},
	{packet.ErrClientID, "client_id"},
	{packet.ErrShortTopic, "short_topic"},
	{packet.ErrTopicName, "topic_name"},
	{packet.ErrReturnCode, "return_code"},
	{packet.ErrEncapsulation, "encapsulation"},
}

// goDecode writes what mqttsn-decode writes, from the Go decoder.
func goDecode(b []byte) string {
	m, err := packet.Decode(b)
	if err != nil {
		for _, k := range errorKinds {
			if errors.Is(err, k.err) {
				return "error " + k.kind
			}
		}
		return "error " + err.Error()
	}
	enc := hex.EncodeToString(packet.Append(nil, m))
	if enc == "" {
		enc = "-"
	}
	return "ok " + flatten(m) + " | " + enc
}

// mutate returns a copy of s with one to three random changes.
func mutate(rng *rand.Rand, s []byte) []byte {
	b := append([]byte(nil), s...)
	for range 1 + rng.IntN(3) {
		switch op := rng.IntN(7); {
		case op == 0 && len(b) > 0: // change a byte
			b[rng.IntN(len(b))] = byte(rng.IntN(256))
		case op == 1 && len(b) > 0: // flip a bit
			b[rng.IntN(len(b))] ^= 1 << rng.IntN(8)
		case op == 2: // insert a byte
			i := rng.IntN(len(b) + 1)
			b = append(b[:i], append([]byte{byte(rng.IntN(256))}, b[i:]...)...)
		case op == 3 && len(b) > 0: // remove a byte
			i := rng.IntN(len(b))
			b = append(b[:i], b[i+1:]...)
		case op == 4 && len(b) > 0: // truncate
			b = b[:rng.IntN(len(b))]
		case op == 5 && len(b) > 0: // make the Length agree with the datagram
			b[0] = byte(len(b))
		case op == 6 && len(b) >= 2: // the 3-octet Length form
			b = append([]byte{0x01, byte((len(b) + 2) >> 8), byte(len(b) + 2)}, b[1:]...)
		}
	}
	return b
}

// fixtureDatagrams returns the datagram of every case of the *.hex fixtures
// (their format: mqttsn/packet/testdata/README.md).
func fixtureDatagrams(t *testing.T, dir string) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.hex"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s: %v", dir, err)
	}
	var all [][]byte
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var cur []byte
		inCase := false
		for _, line := range strings.Split(string(text), "\n") {
			key, val, ok := strings.Cut(strings.TrimSpace(line), ":")
			switch {
			case !ok:
			case key == "name":
				if inCase {
					all = append(all, cur)
				}
				cur, inCase = []byte{}, true
			case key == "hex":
				val, _, _ = strings.Cut(val, "#")
				b, err := hex.DecodeString(strings.Join(strings.Fields(val), ""))
				if err != nil {
					t.Fatalf("%s: %q: %v", file, line, err)
				}
				cur = append(cur, b...)
			}
		}
		if inCase {
			all = append(all, cur)
		}
	}
	return all
}

// fuzzCorpus reads the Go fuzzer's corpus files ("go test fuzz v1" and one
// []byte("...") line).
func fuzzCorpus(t *testing.T, dir string) [][]byte {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	var all [][]byte
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(text)), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[1], "[]byte(") {
			continue
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		all = append(all, []byte(s))
	}
	return all
}
