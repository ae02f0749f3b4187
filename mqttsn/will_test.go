package mqttsn

import (
	"testing"
	"time"

	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// connectWithWill runs the §6.2 handshake: CONNECT with Will,
// WILLTOPICREQ, WILLTOPIC, WILLMSGREQ, WILLMSG, CONNACK.
func (c *snClient) connectWithWill(id string, clean bool, keepAlive packet.Seconds, topic string, q packet.QoS, retain bool, msg string) {
	c.t.Helper()
	c.send(&packet.Connect{Will: true, CleanSession: clean, KeepAlive: keepAlive, ClientID: []byte(id)})
	expect[*packet.WillTopicReq](c)
	c.send(&packet.WillTopic{QoS: q, Retain: retain, WillTopic: []byte(topic)})
	expect[*packet.WillMsgReq](c)
	c.send(&packet.WillMsg{WillMsg: []byte(msg)})
	if ca := expect[*packet.Connack](c); ca.ReturnCode != packet.Accepted {
		c.t.Fatalf("CONNACK %v", ca.ReturnCode)
	}
}

// A client silent past 1.5 × its keep-alive is lost: mosquitto_sub sees
// its will. Real time: a 1 s keep-alive.
func TestWillOfLostClientSeenByMosquitto(t *testing.T) {
	e := newEnv(t, Options{})
	for _, v := range mosqVersions {
		t.Run(v, func(t *testing.T) {
			sub := e.startSub(t, v, "will/"+v+"/#", 1)
			c := newSNClient(t, e.gwAddr)
			c.connectWithWill("will-"+v, true, 1, "will/"+v+"/status", packet.QoS1, false, "offline")
			start := time.Now()
			lost := e.g.Stats().Lost
			sub.expect("MSG|will/" + v + "/status|1|0|offline")
			if el := time.Since(start); el < time.Second {
				t.Fatalf("will published after %v, before the keep-alive (1s × 1.5) passed", el)
			}
			if st := e.g.Stats(); st.Lost != lost+1 {
				t.Fatalf("Stats.Lost = %d, want %d", st.Lost, lost+1)
			}
			// The lost client is gone: its PINGREQ is answered DISCONNECT.
			c.send(&packet.Pingreq{})
			expect[*packet.Disconnect](c)
		})
	}
}

// PINGREQs keep a client alive; a DISCONNECT discards the will.
func TestKeepAliveAndCleanDisconnect(t *testing.T) {
	e := newEnv(t, Options{})
	w := watch(t, e.b, "ka/#")
	c := newSNClient(t, e.gwAddr)
	c.connectWithWill("ka", true, 1, "ka/will", packet.QoS0, false, "gone")
	for range 4 { // 2 s, past 1.5 × the keep-alive
		time.Sleep(500 * time.Millisecond) // the client's own pace, not a wait for a condition
		c.send(&packet.Pingreq{})
		expect[*packet.Pingresp](c)
	}
	c.send(&packet.Disconnect{})
	expect[*packet.Disconnect](c)
	w.expectNothing(2 * time.Second)
}

// An empty WILLTOPIC means no will (§6.3); WILLTOPICUPD and WILLMSGUPD
// change the will (§6.4); an empty WILLTOPICUPD deletes it.
func TestWillUpdate(t *testing.T) {
	e := newEnv(t, Options{})
	w := watch(t, e.b, "wu/#")

	c := newSNClient(t, e.gwAddr)
	c.send(&packet.Connect{Will: true, CleanSession: true, KeepAlive: 1, ClientID: []byte("wu1")})
	expect[*packet.WillTopicReq](c)
	c.send(&packet.WillTopic{}) // empty: no will, no WILLMSGREQ
	if ca := expect[*packet.Connack](c); ca.ReturnCode != packet.Accepted {
		t.Fatalf("CONNACK %v", ca.ReturnCode)
	}
	c.send(&packet.WillTopicUpd{QoS: packet.QoS1, Retain: true, WillTopic: []byte("wu/1")})
	if r := expect[*packet.WillTopicResp](c); r.ReturnCode != packet.Accepted {
		t.Fatalf("WILLTOPICRESP %v", r.ReturnCode)
	}
	c.send(&packet.WillMsgUpd{WillMsg: []byte("updated")})
	if r := expect[*packet.WillMsgResp](c); r.ReturnCode != packet.Accepted {
		t.Fatalf("WILLMSGRESP %v", r.ReturnCode)
	}
	// Lost: the updated will, retained.
	d := w.expect("wu/1", "updated")
	if d.Message.QoS != 1 || !d.Message.Retain {
		t.Fatalf("will %+v", d.Message)
	}

	c2 := newSNClient(t, e.gwAddr)
	c2.connectWithWill("wu2", true, 1, "wu/2", packet.QoS0, false, "first")
	c2.send(&packet.WillTopicUpd{}) // deletes topic and message
	if r := expect[*packet.WillTopicResp](c2); r.ReturnCode != packet.Accepted {
		t.Fatalf("WILLTOPICRESP %v", r.ReturnCode)
	}
	c2.send(&packet.WillTopicUpd{WillTopic: []byte("wu/#")})
	if r := expect[*packet.WillTopicResp](c2); r.ReturnCode == packet.Accepted {
		t.Fatal("WILLTOPICUPD with a wildcard accepted")
	}
	w.expectNothing(2500 * time.Millisecond) // lost after 1.5 s, without a will
	if e.g.Stats().Lost < 2 {
		t.Fatalf("Stats.Lost = %d, want 2", e.g.Stats().Lost)
	}
}

// §6.3: with CleanSession=false and Will=false, the will of the previous
// connection stays.
func TestWillKeptAcrossConnections(t *testing.T) {
	e := newEnv(t, Options{})
	w := watch(t, e.b, "wk/#")
	c := newSNClient(t, e.gwAddr)
	c.connectWithWill("wk", false, 60, "wk/will", packet.QoS0, false, "kept")
	c.send(&packet.Disconnect{})
	expect[*packet.Disconnect](c)
	c.connect("wk", false, 1)
	w.expect("wk/will", "kept")
}

// A client id connecting from a new address takes its session over: the
// subscriptions and topic ids of a CleanSession=false session stay, and the
// old address is no longer served.
func TestTakeoverFromNewAddress(t *testing.T) {
	e := newEnv(t, Options{})
	a := newSNClient(t, e.gwAddr)
	a.connect("mover", false, 60)
	tid := a.register("move/data")
	sa := a.subscribe(packet.TopicIDNormal, "move/cmd", 0, packet.QoS1)

	b := newSNClient(t, e.gwAddr)
	b.connect("mover", false, 60)
	// The id registered at the old address still works.
	b.publish(packet.TopicIDNormal, tid, packet.QoS1, false, "from b")
	// The subscription is still there; its id is the same and is REGISTERed
	// again in the new connection before the first PUBLISH (§6.10).
	mosqPub(t, e.tcp, "mqttv5", "-t", "move/cmd", "-q", "1", "-m", "to b")
	if r := b.acceptRegister(); r.TopicID != sa.TopicID || string(r.TopicName) != "move/cmd" {
		t.Fatalf("REGISTER %+v, want id %d", r, sa.TopicID)
	}
	if p := b.expectPublish(); p.TopicID != sa.TopicID || string(p.Data) != "to b" {
		t.Fatalf("PUBLISH %+v", p)
	}
	a.expectNothing(200 * time.Millisecond)
	a.send(&packet.Pingreq{})
	expect[*packet.Disconnect](a)
	if st := e.g.Stats(); st.Clients != 1 {
		t.Fatalf("Stats.Clients = %d, want 1", st.Clients)
	}
}

// Topic ids survive a reconnection with CleanSession=false, and are
// forgotten with CleanSession=true.
func TestTopicIDsAcrossReconnect(t *testing.T) {
	e := newEnv(t, Options{})
	w := watch(t, e.b, "keep/#")
	c := newSNClient(t, e.gwAddr)
	c.connect("keeper", false, 60)
	id := c.register("keep/x")
	c.send(&packet.Disconnect{})
	expect[*packet.Disconnect](c)
	eventually(t, 5*time.Second, "session saved", func() bool { return e.g.Stats().SavedSessions == 1 })

	c.connect("keeper", false, 60)
	c.publish(packet.TopicIDNormal, id, packet.QoS1, false, "same id")
	w.expect("keep/x", "same id")
	c.send(&packet.Disconnect{})
	expect[*packet.Disconnect](c)

	c.connect("keeper", true, 60)
	c.send(&packet.Publish{QoS: packet.QoS1, TopicID: id, MsgID: 9, Data: []byte("old id")})
	if pa := expect[*packet.Puback](c); pa.ReturnCode != packet.RejectedInvalidTopicID {
		t.Fatalf("PUBACK %+v after a clean session, want invalid topic id", pa)
	}
}
