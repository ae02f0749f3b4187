package mqttsn

import (
	"fmt"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// mosquitto_pub reaches an MQTT-SN subscriber by name, by wildcard (after a
// REGISTER from the gateway), by pre-defined id and by short name, at the
// QoS granted.
func TestSubscribeFromMosquitto(t *testing.T) {
	e := newEnv(t, Options{Predefined: map[uint16]string{0x0101: "cmd/pre"}})
	for _, v := range mosqVersions {
		t.Run(v, func(t *testing.T) {
			c := newSNClient(t, e.gwAddr)
			c.connect("sub-"+v, true, 60)

			// By name: SUBACK carries the id the PUBLISH uses.
			name := "cmd/" + v + "/name"
			sa := c.subscribe(packet.TopicIDNormal, name, 0, packet.QoS1)
			if sa.ReturnCode != packet.Accepted || sa.QoS != packet.QoS1 || sa.TopicID == 0 {
				t.Fatalf("SUBACK by name %+v", sa)
			}
			mosqPub(t, e.tcp, v, "-t", name, "-q", "1", "-m", "by name")
			p := c.expectPublish()
			if p.TopicIDType != packet.TopicIDNormal || p.TopicID != sa.TopicID || p.QoS != packet.QoS1 || string(p.Data) != "by name" || p.DUP || p.Retain {
				t.Fatalf("PUBLISH %+v", p)
			}

			// By wildcard: SUBACK topic id 0x0000, REGISTER before the PUBLISH.
			sa = c.subscribe(packet.TopicIDNormal, "wild/"+v+"/#", 0, packet.QoS2)
			if sa.ReturnCode != packet.Accepted || sa.QoS != packet.QoS2 || sa.TopicID != 0 {
				t.Fatalf("SUBACK wildcard %+v", sa)
			}
			topic := "wild/" + v + "/a/b"
			mosqPub(t, e.tcp, v, "-t", topic, "-q", "2", "-m", "first")
			reg := c.acceptRegister()
			if string(reg.TopicName) != topic || reg.TopicID == 0 {
				t.Fatalf("REGISTER %+v", reg)
			}
			p = c.expectPublish()
			if p.TopicIDType != packet.TopicIDNormal || p.TopicID != reg.TopicID || p.QoS != packet.QoS2 || string(p.Data) != "first" {
				t.Fatalf("PUBLISH after REGISTER %+v", p)
			}
			// The second message on the same topic needs no REGISTER.
			mosqPub(t, e.tcp, v, "-t", topic, "-q", "0", "-m", "second")
			p = c.expectPublish()
			if p.TopicID != reg.TopicID || p.QoS != packet.QoS0 || string(p.Data) != "second" {
				t.Fatalf("second PUBLISH %+v", p)
			}

			// By pre-defined id.
			sa = c.subscribe(packet.TopicIDPredefined, "", 0x0101, packet.QoS1)
			if sa.ReturnCode != packet.Accepted || sa.TopicID != 0x0101 {
				t.Fatalf("SUBACK pre-defined %+v", sa)
			}
			mosqPub(t, e.tcp, v, "-t", "cmd/pre", "-q", "2", "-m", "pre")
			p = c.expectPublish()
			if p.TopicIDType != packet.TopicIDPredefined || p.TopicID != 0x0101 || p.QoS != packet.QoS1 || string(p.Data) != "pre" {
				t.Fatalf("PUBLISH pre-defined %+v", p)
			}

			// By short name.
			sn := [2]byte{v[5], 'z'} // "3z" or "5z"... from mqttv311 / mqttv5
			sa = c.subscribe(packet.TopicIDShort, "", packet.ShortTopicID(sn), packet.QoS0)
			if sa.ReturnCode != packet.Accepted {
				t.Fatalf("SUBACK short %+v", sa)
			}
			mosqPub(t, e.tcp, v, "-t", string(sn[:]), "-q", "1", "-m", "short")
			p = c.expectPublish()
			if p.TopicIDType != packet.TopicIDShort || p.TopicID != packet.ShortTopicID(sn) || p.QoS != packet.QoS0 || string(p.Data) != "short" {
				t.Fatalf("PUBLISH short %+v", p)
			}

			// Unsubscribe: nothing more.
			c.send(&packet.Unsubscribe{TopicIDType: packet.TopicIDNormal, MsgID: 77, TopicName: []byte(name)})
			if ua := expect[*packet.Unsuback](c); ua.MsgID != 77 {
				t.Fatalf("UNSUBACK %+v", ua)
			}
			mosqPub(t, e.tcp, v, "-t", name, "-q", "1", "-m", "after unsubscribe")
			c.expectNothing(300 * time.Millisecond)
		})
	}
}

// Retained messages come after the SUBACK, with Retain set, REGISTERed
// first when the subscription has wildcards.
func TestRetainedAfterSuback(t *testing.T) {
	e := newEnv(t, Options{})
	mosqPub(t, e.tcp, "mqttv5", "-t", "ret/one", "-q", "1", "-r", "-m", "kept one")
	mosqPub(t, e.tcp, "mqttv311", "-t", "ret/two", "-q", "0", "-r", "-m", "kept two")
	// QoS 0 has no acknowledgement: wait until the broker stored it.
	eventually(t, 5*time.Second, "retained messages stored", func() bool { return e.b.Stats().Retained == 2 })
	c := newSNClient(t, e.gwAddr)
	c.connect("ret", true, 60)

	sa := c.subscribe(packet.TopicIDNormal, "ret/one", 0, packet.QoS1)
	if sa.ReturnCode != packet.Accepted || sa.TopicID == 0 {
		t.Fatalf("SUBACK %+v", sa)
	}
	oneID := sa.TopicID
	p := c.expectPublish()
	if p.TopicID != oneID || !p.Retain || p.QoS != packet.QoS1 || string(p.Data) != "kept one" {
		t.Fatalf("retained PUBLISH %+v", p)
	}

	sa = c.subscribe(packet.TopicIDNormal, "ret/+", 0, packet.QoS0)
	if sa.TopicID != 0 {
		t.Fatalf("SUBACK %+v", sa)
	}
	got := map[string]string{}
	for range 2 {
		m, err := c.recv(recvTimeout)
		if err != nil {
			t.Fatal(err)
		}
		switch m := m.(type) {
		case *packet.Register:
			c.send(&packet.Regack{TopicID: m.TopicID, MsgID: m.MsgID})
			p := expect[*packet.Publish](c)
			if p.TopicID != m.TopicID || !p.Retain {
				t.Fatalf("PUBLISH %+v after REGISTER %+v", p, m)
			}
			got[string(m.TopicName)] = string(p.Data)
		case *packet.Publish:
			// ret/one's id is known from the first SUBACK: no REGISTER.
			if m.TopicIDType != packet.TopicIDNormal || m.TopicID != oneID || !m.Retain {
				t.Fatalf("PUBLISH %+v, want ret/one's id %d", m, oneID)
			}
			got["ret/one"] = string(m.Data)
		default:
			t.Fatalf("got %T", m)
		}
	}
	if got["ret/one"] != "kept one" || got["ret/two"] != "kept two" {
		t.Fatalf("retained %v", got)
	}
}

// §6.6, §6.7: a PUBLISH on an unknown normal or pre-defined id, or a
// SUBSCRIBE to an unknown pre-defined id, is answered "invalid topic ID".
func TestInvalidTopicID(t *testing.T) {
	e := newEnv(t, Options{})
	c := newSNClient(t, e.gwAddr)
	c.connect("inval", true, 60)
	for _, tt := range []packet.TopicIDType{packet.TopicIDNormal, packet.TopicIDPredefined} {
		for _, q := range []packet.QoS{packet.QoS0, packet.QoS1, packet.QoS2} {
			p := &packet.Publish{QoS: q, TopicIDType: tt, TopicID: 0x0999, Data: []byte("x")}
			if q > 0 {
				p.MsgID = c.nextID()
			}
			c.send(p)
			pa := expect[*packet.Puback](c)
			if pa.ReturnCode != packet.RejectedInvalidTopicID || pa.TopicID != 0x0999 || pa.MsgID != p.MsgID {
				t.Fatalf("%v QoS %d: PUBACK %+v", tt, q, pa)
			}
		}
	}
	sa := c.subscribe(packet.TopicIDPredefined, "", 0x0999, packet.QoS1)
	if sa.ReturnCode != packet.RejectedInvalidTopicID {
		t.Fatalf("SUBACK %+v", sa)
	}
	// A REGISTER with wildcards is refused.
	c.send(&packet.Register{MsgID: 5, TopicName: []byte("a/#")})
	if ra := expect[*packet.Regack](c); ra.ReturnCode == packet.Accepted || ra.MsgID != 5 {
		t.Fatalf("REGACK %+v", ra)
	}
}

// The QoS of a delivery is min(publish, granted); the gateway's MsgIds are
// non-zero for QoS 1/2 and 0 for QoS 0.
func TestDeliveryQoS(t *testing.T) {
	e := newEnv(t, Options{})
	c := newSNClient(t, e.gwAddr)
	c.connect("qos", true, 60)
	for granted := packet.QoS0; granted <= packet.QoS2; granted++ {
		name := fmt.Sprintf("qos/g%d", granted)
		sa := c.subscribe(packet.TopicIDNormal, name, 0, granted)
		for pubQ := 0; pubQ <= 2; pubQ++ {
			mosqPub(t, e.tcp, "mqttv5", "-t", name, "-q", fmt.Sprint(pubQ), "-m", "m")
			p := c.expectPublish()
			want := min(packet.QoS(pubQ), granted)
			if p.QoS != want || p.TopicID != sa.TopicID || (want == 0) != (p.MsgID == 0) {
				t.Fatalf("granted %d published %d: PUBLISH %+v", granted, pubQ, p)
			}
		}
	}
}
