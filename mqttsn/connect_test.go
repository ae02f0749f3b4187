package mqttsn

import (
	"fmt"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/mqttsn/packet"
)

func TestConnectPingDisconnect(t *testing.T) {
	e := newEnv(t, Options{})
	c := newSNClient(t, e.gwAddr)
	c.connect("dev1", true, 60)
	c.send(&packet.Pingreq{})
	expect[*packet.Pingresp](c)
	if st := e.g.Stats(); st.Clients != 1 {
		t.Fatalf("Stats.Clients = %d, want 1", st.Clients)
	}
	c.send(&packet.Disconnect{})
	expect[*packet.Disconnect](c)
	eventually(t, 5*time.Second, "client removed", func() bool { return e.g.Stats().Clients == 0 })
	// Not connected any more: §6.12, the gateway answers DISCONNECT.
	c.send(&packet.Pingreq{})
	expect[*packet.Disconnect](c)
}

// MQTT-SN PUBLISH at each QoS, on a registered id, a pre-defined id and a
// short topic name, reaches mosquitto_sub in both protocol versions.
func TestPublishToMosquitto(t *testing.T) {
	e := newEnv(t, Options{Predefined: map[uint16]string{7: "sn/pre/seven"}})
	for _, v := range mosqVersions {
		t.Run(v, func(t *testing.T) {
			sub := e.startSub(t, v, "sn/#", 2)
			short := e.startSub(t, v, "ab", 2)
			c := newSNClient(t, e.gwAddr)
			c.connect("pub-"+v, true, 60)
			id := c.register("sn/temp/" + v)
			for q := packet.QoS0; q <= packet.QoS2; q++ {
				c.publish(packet.TopicIDNormal, id, q, false, fmt.Sprintf("normal qos %d", q))
				sub.expect(fmt.Sprintf("MSG|sn/temp/%s|%d|0|normal qos %d", v, q, q))
			}
			for q := packet.QoS0; q <= packet.QoS2; q++ {
				c.publish(packet.TopicIDPredefined, 7, q, false, fmt.Sprintf("pre qos %d", q))
				sub.expect(fmt.Sprintf("MSG|sn/pre/seven|%d|0|pre qos %d", q, q))
			}
			for q := packet.QoS0; q <= packet.QoS2; q++ {
				c.publish(packet.TopicIDShort, packet.ShortTopicID([2]byte{'a', 'b'}), q, false, fmt.Sprintf("short qos %d", q))
				short.expect(fmt.Sprintf("MSG|ab|%d|0|short qos %d", q, q))
			}
			c.send(&packet.Disconnect{})
			expect[*packet.Disconnect](c)
		})
	}
}
