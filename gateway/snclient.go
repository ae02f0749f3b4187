package gateway

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/outpost-gw/outpost/mqttsn/client"
	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// SNOptions configures SNPub and SNSub (outpost sn pub / sub). Of the topic
// fields Topic, Predefined and Short, the first non-zero one is used.
type SNOptions struct {
	Gateway    string // host:port of the MQTT-SN gateway (UDP)
	ClientID   string
	Topic      string // topic name (wildcards allowed for SNSub)
	Predefined uint16 // pre-defined topic id, when Topic and Short are ""
	Short      string // two-character short topic name
	QoS        int    // -1 (SNPub only), 0, 1 or 2
	Retain     bool
	Message    []byte
	Persistent bool          // keep the session (CleanSession off)
	KeepAlive  time.Duration // 0 means 60s
	WillTopic  string        // "" means no will
	WillMsg    []byte
	Sleep      time.Duration // SNSub: > 0 sleeps and wakes with PINGREQ
	Count      int           // SNSub: stop after Count messages; 0 means never
}

func (o SNOptions) client() (*client.Client, client.Topic, error) {
	c, err := client.New(client.Options{
		Addr: o.Gateway, ClientID: o.ClientID, CleanSession: !o.Persistent, KeepAlive: o.KeepAlive,
		WillTopic: o.WillTopic, WillMsg: o.WillMsg,
	})
	return c, client.Topic{Name: o.Topic, Predefined: o.Predefined, Short: o.Short}, err
}

// SNPub connects to an MQTT-SN gateway and publishes one message (at QoS -1
// it only sends the PUBLISH).
func SNPub(ctx context.Context, o SNOptions) error {
	c, t, err := o.client()
	if err != nil {
		return err
	}
	defer c.Close()
	if o.QoS == -1 {
		return c.Publish(ctx, t, packet.QoSMinus1, o.Retain, o.Message)
	}
	if err := c.Connect(ctx); err != nil {
		return err
	}
	if err := c.Publish(ctx, t, packet.QoS(o.QoS), o.Retain, o.Message); err != nil {
		return err
	}
	return c.Disconnect(ctx)
}

// SNSub subscribes on an MQTT-SN gateway and writes a "topic payload" line
// to out for each message, until Count messages or until ctx is done (then
// it returns ctx's error).
func SNSub(ctx context.Context, o SNOptions, out io.Writer) error {
	c, t, err := o.client()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		return err
	}
	if err := c.Subscribe(ctx, t, packet.QoS(o.QoS)); err != nil {
		return err
	}
	if o.Sleep > 0 {
		if err := c.Sleep(ctx, o.Sleep); err != nil {
			return err
		}
	}
	for n := 0; o.Count == 0 || n < o.Count; n++ {
		m, err := c.Receive(ctx)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(out, "%s %s\n", m.Topic, m.Payload); err != nil {
			return err
		}
	}
	dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.Disconnect(dctx) // best effort: the messages are out
	return nil
}
