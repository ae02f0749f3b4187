package mqttsn

import (
	"bufio"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// fixture is one case of mqttsn/packet/testdata (see its README).
type fixture struct {
	name string
	data []byte
	ok   bool // expect: ok
}

// loadFixtures reads the codec's golden fixtures: name, hex and expect.
func loadFixtures(t testing.TB) []fixture {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("packet", "testdata", "*.hex"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	var all []fixture
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		var cur *fixture
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			key, val, _ := strings.Cut(line, ":")
			val = strings.TrimSpace(val)
			switch key {
			case "name":
				all = append(all, fixture{name: val})
				cur = &all[len(all)-1]
			case "hex":
				if i := strings.IndexByte(val, '#'); i >= 0 {
					val = val[:i]
				}
				b, err := hex.DecodeString(strings.Join(strings.Fields(val), ""))
				if err != nil {
					t.Fatalf("%s: %s: %v", file, cur.name, err)
				}
				cur.data = append(cur.data, b...)
			case "expect":
				cur.ok = val == "ok"
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return all
}

// Every invalid datagram of the codec's fixtures, bare and inside a valid
// encapsulation, sent at a running gateway: each is dropped without an
// answer and counted, and a connected client is unharmed. The valid
// fixtures from an unknown address get only well-formed answers.
func TestBadInputFixtures(t *testing.T) {
	e := newEnv(t, Options{Predefined: map[uint16]string{1: "bad/pre"}})
	victim := newSNClient(t, e.gwAddr)
	victim.connect("victim", true, 60)
	vid := victim.register("bad/victim")
	victim.subscribe(packet.TopicIDNormal, "bad/victim", 0, packet.QoS1)

	fixtures := loadFixtures(t)
	attacker := newSNClient(t, e.gwAddr)
	bad := 0
	for _, f := range fixtures {
		if f.ok {
			continue
		}
		bad++
		attacker.sendRaw(f.data)
		if len(f.data) > 0 && f.data[0] != 0x01 && (len(f.data) < 2 || f.data[1] != byte(packet.TypeEncapsulated)) {
			bad++
			attacker.sendRaw(append(packet.AppendEncapsulationHeader(nil, 0, []byte{0xAB}), f.data...))
		}
	}
	eventually(t, 5*time.Second, "every bad datagram counted", func() bool { return e.g.Stats().Malformed == int64(bad) })
	attacker.expectNothing(200 * time.Millisecond)
	t.Logf("%d malformed datagrams dropped", bad)

	stranger := newSNClient(t, e.gwAddr)
	for _, f := range fixtures {
		if !f.ok {
			continue
		}
		stranger.sendRaw(f.data)
	}
	answers := 0
	buf := make([]byte, 70000)
	for {
		_ = stranger.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, _, err := stranger.conn.ReadFrom(buf)
		if err != nil {
			if !os.IsTimeout(err) {
				t.Fatal(err)
			}
			break
		}
		answers++
		if _, err := packet.Decode(buf[:n]); err != nil {
			t.Fatalf("malformed answer to a valid fixture: % x: %v", buf[:n], err)
		}
	}
	t.Logf("%d answers to the valid fixtures from an unknown address", answers)

	// The victim still works both ways.
	victim.send(&packet.Pingreq{})
	expect[*packet.Pingresp](victim)
	victim.publish(packet.TopicIDNormal, vid, packet.QoS1, false, "still here")
	if p := victim.expectPublish(); string(p.Data) != "still here" {
		t.Fatalf("PUBLISH %+v", p)
	}
}
