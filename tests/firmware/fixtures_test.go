//go:build linux

package firmware_test

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// The C codec's tests (firmware/mqttsn/test) check the decoded value of
// every valid golden fixture against firmware/mqttsn/test/expected.txt. This
// test checks every line of that file against the Go decoder, whose own
// tests compare the same fixtures with values written by hand: so the C and
// Go decoders agree on each value, not only on accepting the datagram. It
// needs no C compiler.
func TestFirmwareExpectedValuesMatchGo(t *testing.T) {
	root := bridgeRoot(t)
	f, err := os.Open(filepath.Join(root, "firmware", "mqttsn", "test", "expected.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		hx, want, _ := strings.Cut(rest, " ")
		b, err := hex.DecodeString(hx)
		if err != nil {
			t.Errorf("%s: bad hex: %v", name, err)
			continue
		}
		m, err := packet.Decode(b)
		if err != nil {
			t.Errorf("%s: the Go decoder rejects it: %v", name, err)
			continue
		}
		if got := flatten(m); got != want {
			t.Errorf("%s:\n C: %s\nGo: %s", name, want, got)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	// Every valid fixture has a line (the C test checks which ones).
	if n < 70 {
		t.Fatalf("expected.txt has %d cases; the fixtures have more than 70 valid ones", n)
	}
}

// flat is the C codec's mqttsn_msg_t: every message's fields in one struct.
type flat struct {
	typ                                     packet.MsgType
	dup, retain, will, clean, hasDur, encap bool
	qos                                     packet.QoS
	tidt, rc, gw, radius, ctrl              uint8
	dur, tid, mid                           uint16
	payload, node                           []byte
}

// flatten writes m as the C test's dump() does.
func flatten(m packet.Message) string {
	var f flat
	if e, ok := m.(*packet.Encapsulated); ok {
		f.encap, f.ctrl, f.node = true, e.Radius, e.NodeID
		m = e.Message
	}
	f.typ = m.Type()
	switch m := m.(type) {
	case *packet.Advertise:
		f.gw, f.dur = m.GwID, uint16(m.Duration)
	case *packet.SearchGW:
		f.radius = m.Radius
	case *packet.GWInfo:
		f.gw, f.payload = m.GwID, m.GwAdd
	case *packet.Connect:
		f.will, f.clean, f.dur, f.payload = m.Will, m.CleanSession, uint16(m.KeepAlive), m.ClientID
	case *packet.Connack:
		f.rc = uint8(m.ReturnCode)
	case *packet.WillTopicResp:
		f.rc = uint8(m.ReturnCode)
	case *packet.WillMsgResp:
		f.rc = uint8(m.ReturnCode)
	case *packet.WillTopic:
		f.qos, f.retain, f.payload = m.QoS, m.Retain, m.WillTopic
	case *packet.WillTopicUpd:
		f.qos, f.retain, f.payload = m.QoS, m.Retain, m.WillTopic
	case *packet.WillMsg:
		f.payload = m.WillMsg
	case *packet.WillMsgUpd:
		f.payload = m.WillMsg
	case *packet.Register:
		f.tid, f.mid, f.payload = m.TopicID, m.MsgID, m.TopicName
	case *packet.Regack:
		f.tid, f.mid, f.rc = m.TopicID, m.MsgID, uint8(m.ReturnCode)
	case *packet.Puback:
		f.tid, f.mid, f.rc = m.TopicID, m.MsgID, uint8(m.ReturnCode)
	case *packet.Publish:
		f.dup, f.qos, f.retain, f.tidt = m.DUP, m.QoS, m.Retain, uint8(m.TopicIDType)
		f.tid, f.mid, f.payload = m.TopicID, m.MsgID, m.Data
	case *packet.Pubrec:
		f.mid = m.MsgID
	case *packet.Pubrel:
		f.mid = m.MsgID
	case *packet.Pubcomp:
		f.mid = m.MsgID
	case *packet.Unsuback:
		f.mid = m.MsgID
	case *packet.Subscribe:
		f.dup, f.qos, f.tidt, f.mid, f.tid, f.payload = m.DUP, m.QoS, uint8(m.TopicIDType), m.MsgID, m.TopicID, m.TopicName
	case *packet.Unsubscribe:
		f.tidt, f.mid, f.tid, f.payload = uint8(m.TopicIDType), m.MsgID, m.TopicID, m.TopicName
	case *packet.Suback:
		f.qos, f.tid, f.mid, f.rc = m.QoS, m.TopicID, m.MsgID, uint8(m.ReturnCode)
	case *packet.Pingreq:
		f.payload = m.ClientID
	case *packet.Disconnect:
		f.hasDur, f.dur = m.HasDuration, uint16(m.Duration)
	}
	b := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	hx := func(p []byte) string {
		if len(p) == 0 {
			return "-"
		}
		return hex.EncodeToString(p)
	}
	return fmt.Sprintf("type=%02x dup=%d qos=%d retain=%d will=%d clean=%d tidt=%d rc=%d gw=%d radius=%d hasdur=%d dur=%d "+
		"tid=%d mid=%d payload=%s encap=%d ctrl=%d node=%s",
		byte(f.typ), b(f.dup), f.qos, b(f.retain), b(f.will), b(f.clean), f.tidt, f.rc, f.gw, f.radius, b(f.hasDur), f.dur,
		f.tid, f.mid, hx(f.payload), b(f.encap), f.ctrl, hx(f.node))
}
