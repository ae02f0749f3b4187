// Package client is a small MQTT-SN 1.2 client over UDP for testing devices
// and links from a shell (outpost sn pub / outpost sn sub). It runs in the
// caller's goroutine: no goroutine of its own, every call reads the socket
// until its answer comes, handling what the gateway sends meanwhile
// (REGISTER, PUBLISH, PUBREL).
package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// Options configures a Client. Zero values are usable except for Addr.
type Options struct {
	Addr         string        // gateway host:port (UDP)
	ClientID     string        // "" means "outpost-sn-<pid-like suffix>" chosen by the caller
	CleanSession bool          // false keeps the session in the gateway
	KeepAlive    time.Duration // 0 means 60s
	WillTopic    string        // "" means no will
	WillMsg      []byte
	WillQoS      packet.QoS
	WillRetain   bool
	Retry        time.Duration // 0 means 2s: how long to wait for an answer before resending
	Retries      int           // 0 means 4 resends
}

// Topic names a topic in one of MQTT-SN's three ways.
type Topic struct {
	Name       string // a topic name (may hold wildcards for Subscribe)
	Predefined uint16 // a pre-defined topic id, when Name and Short are ""
	Short      string // a two-character short topic name
}

func (t Topic) String() string {
	switch {
	case t.Name != "":
		return t.Name
	case t.Short != "":
		return t.Short
	default:
		return strconv.Itoa(int(t.Predefined))
	}
}

// Message is one PUBLISH received from the gateway. Topic is the topic name
// when the client knows it, the short name, or the pre-defined id in decimal.
type Message struct {
	Topic   string
	Payload []byte
	QoS     packet.QoS
	Retain  bool
}

// Client is an MQTT-SN client. It is not safe for concurrent use.
type Client struct {
	opts   Options
	conn   net.Conn
	msgID  uint16
	topics map[uint16]string // registered topic id → name
	queue  []Message         // received, not yet returned by Receive
	qos2   map[uint16]bool   // QoS 2 messages delivered, awaiting PUBREL
	sleep  time.Duration     // > 0 while asleep
	buf    []byte
}

// ErrTimeout is returned when the gateway did not answer after every resend.
var ErrTimeout = errors.New("mqttsn client: no answer from the gateway")

// New opens the UDP socket; it sends nothing.
func New(opts Options) (*Client, error) {
	if opts.KeepAlive == 0 {
		opts.KeepAlive = 60 * time.Second
	}
	if opts.Retry == 0 {
		opts.Retry = 2 * time.Second
	}
	if opts.Retries == 0 {
		opts.Retries = 4
	}
	conn, err := net.Dial("udp", opts.Addr)
	if err != nil {
		return nil, err
	}
	return &Client{opts: opts, conn: conn, topics: map[uint16]string{}, qos2: map[uint16]bool{}, buf: make([]byte, 65536)}, nil
}

// Close closes the socket without DISCONNECT.
func (c *Client) Close() error { return c.conn.Close() }

func (c *Client) nextID() uint16 {
	c.msgID++
	if c.msgID == 0 {
		c.msgID = 1
	}
	return c.msgID
}

func (c *Client) send(m packet.Message) error {
	_, err := c.conn.Write(packet.Append(nil, m))
	return err
}

// read reads one message until deadline, handling what the gateway sends on
// its own; it returns (nil, nil) for a message it handled.
func (c *Client) read(ctx context.Context, deadline time.Time) (packet.Message, error) {
	ctxDeadline := false
	if d, ok := ctx.Deadline(); ok && !d.After(deadline) {
		deadline, ctxDeadline = d, true
	}
	// A cancelled ctx ends the read at once: the deadline moves to the past.
	stop := context.AfterFunc(ctx, func() { c.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	c.conn.SetReadDeadline(deadline)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n, err := c.conn.Read(c.buf)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if ctxDeadline {
				return nil, context.DeadlineExceeded
			}
		}
		return nil, err
	}
	m, err := packet.Decode(append([]byte(nil), c.buf[:n]...))
	if err != nil {
		return nil, nil // not ours to fail on; skip it
	}
	switch m := m.(type) {
	case *packet.Register: // MQTT-SN 1.2 §6.10: the gateway names a topic id
		c.topics[m.TopicID] = string(m.TopicName)
		return nil, c.send(&packet.Regack{TopicID: m.TopicID, MsgID: m.MsgID, ReturnCode: packet.Accepted})
	case *packet.Publish:
		return nil, c.received(m)
	case *packet.Pubrel:
		delete(c.qos2, m.MsgID)
		return nil, c.send(&packet.Pubcomp{MsgID: m.MsgID})
	}
	return m, nil
}

func (c *Client) received(p *packet.Publish) error {
	msg := Message{Payload: p.Data, QoS: p.QoS, Retain: p.Retain}
	switch p.TopicIDType {
	case packet.TopicIDShort:
		n := packet.ShortTopicName(p.TopicID)
		msg.Topic = string(n[:])
	case packet.TopicIDPredefined:
		msg.Topic = strconv.Itoa(int(p.TopicID))
	default:
		name, ok := c.topics[p.TopicID]
		if !ok { // MQTT-SN 1.2 §6.7: reject an unknown topic id
			if p.QoS > 0 {
				return c.send(&packet.Puback{TopicID: p.TopicID, MsgID: p.MsgID, ReturnCode: packet.RejectedInvalidTopicID})
			}
			return nil
		}
		msg.Topic = name
	}
	switch p.QoS {
	case packet.QoS1:
		if err := c.send(&packet.Puback{TopicID: p.TopicID, MsgID: p.MsgID, ReturnCode: packet.Accepted}); err != nil {
			return err
		}
	case packet.QoS2:
		dup := c.qos2[p.MsgID]
		c.qos2[p.MsgID] = true
		if err := c.send(&packet.Pubrec{MsgID: p.MsgID}); err != nil {
			return err
		}
		if dup {
			return nil
		}
	}
	c.queue = append(c.queue, msg)
	return nil
}

// exchange sends req (resending up to Retries times) until match accepts an
// answer, and returns it.
func (c *Client) exchange(ctx context.Context, req packet.Message, match func(packet.Message) bool) (packet.Message, error) {
	for try := 0; try <= c.opts.Retries; try++ {
		if try > 0 {
			if p, ok := req.(*packet.Publish); ok {
				p.DUP = true
			}
		}
		if req != nil {
			if err := c.send(req); err != nil {
				return nil, err
			}
		}
		deadline := time.Now().Add(c.opts.Retry)
		for time.Now().Before(deadline) {
			m, err := c.read(ctx, deadline)
			if err != nil {
				if isCtxErr(err) {
					return nil, err
				}
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					break
				}
				return nil, err
			}
			if m != nil && match(m) {
				return m, nil
			}
		}
	}
	return nil, ErrTimeout
}

// isCtxErr tells a done context from a read deadline: context.DeadlineExceeded
// is a net.Error with Timeout too.
func isCtxErr(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

func is[T packet.Message](m packet.Message) bool { _, ok := m.(T); return ok }

// Connect sends CONNECT and answers the will handshake (MQTT-SN 1.2 §6.3).
func (c *Client) Connect(ctx context.Context) error {
	will := c.opts.WillTopic != ""
	req := &packet.Connect{Will: will, CleanSession: c.opts.CleanSession,
		KeepAlive: packet.Seconds(c.opts.KeepAlive / time.Second), ClientID: []byte(c.opts.ClientID)}
	var next packet.Message = req
	for {
		m, err := c.exchange(ctx, next, func(m packet.Message) bool {
			return is[*packet.Connack](m) || is[*packet.WillTopicReq](m) || is[*packet.WillMsgReq](m)
		})
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		switch m := m.(type) {
		case *packet.WillTopicReq:
			next = &packet.WillTopic{QoS: c.opts.WillQoS, Retain: c.opts.WillRetain, WillTopic: []byte(c.opts.WillTopic)}
		case *packet.WillMsgReq:
			next = &packet.WillMsg{WillMsg: c.opts.WillMsg}
		case *packet.Connack:
			if m.ReturnCode != packet.Accepted {
				return fmt.Errorf("connect: %w", m.ReturnCode)
			}
			return nil
		}
	}
}

// topicID resolves t for PUBLISH, registering a name first (§6.5).
func (c *Client) topicID(ctx context.Context, t Topic) (packet.TopicIDType, uint16, error) {
	switch {
	case t.Short != "":
		if len(t.Short) != 2 {
			return 0, 0, fmt.Errorf("short topic name %q: want two characters", t.Short)
		}
		return packet.TopicIDShort, packet.ShortTopicID([2]byte{t.Short[0], t.Short[1]}), nil
	case t.Name == "":
		return packet.TopicIDPredefined, t.Predefined, nil
	}
	for id, name := range c.topics {
		if name == t.Name {
			return packet.TopicIDNormal, id, nil
		}
	}
	id := c.nextID()
	m, err := c.exchange(ctx, &packet.Register{MsgID: id, TopicName: []byte(t.Name)}, func(m packet.Message) bool {
		r, ok := m.(*packet.Regack)
		return ok && r.MsgID == id
	})
	if err != nil {
		return 0, 0, fmt.Errorf("register %q: %w", t.Name, err)
	}
	ra := m.(*packet.Regack)
	if ra.ReturnCode != packet.Accepted {
		return 0, 0, fmt.Errorf("register %q: %w", t.Name, ra.ReturnCode)
	}
	c.topics[ra.TopicID] = t.Name
	return packet.TopicIDNormal, ra.TopicID, nil
}

// Publish publishes data to t at qos (-1, 0, 1 or 2) and waits for the
// gateway's acknowledgement at QoS 1 and 2. QoS -1 needs no Connect (§6.8).
func (c *Client) Publish(ctx context.Context, t Topic, qos packet.QoS, retain bool, data []byte) error {
	if qos == packet.QoSMinus1 && t.Name != "" {
		return errors.New("publish at QoS -1 needs a pre-defined topic id or a short name")
	}
	typ, tid, err := c.topicID(ctx, t)
	if err != nil {
		return err
	}
	p := &packet.Publish{QoS: qos, Retain: retain, TopicIDType: typ, TopicID: tid, Data: data}
	if qos <= packet.QoS0 {
		return c.send(p)
	}
	p.MsgID = c.nextID()
	m, err := c.exchange(ctx, p, func(m packet.Message) bool {
		switch m := m.(type) {
		case *packet.Puback:
			return m.MsgID == p.MsgID
		case *packet.Pubrec:
			return qos == packet.QoS2 && m.MsgID == p.MsgID
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if pa, ok := m.(*packet.Puback); ok {
		if pa.ReturnCode != packet.Accepted {
			return fmt.Errorf("publish: %w", pa.ReturnCode)
		}
		return nil
	}
	_, err = c.exchange(ctx, &packet.Pubrel{MsgID: p.MsgID}, func(m packet.Message) bool {
		pc, ok := m.(*packet.Pubcomp)
		return ok && pc.MsgID == p.MsgID
	})
	if err != nil {
		return fmt.Errorf("publish: pubrel: %w", err)
	}
	return nil
}

// Subscribe subscribes to t at qos (0, 1 or 2).
func (c *Client) Subscribe(ctx context.Context, t Topic, qos packet.QoS) error {
	s := &packet.Subscribe{QoS: qos, MsgID: c.nextID()}
	switch {
	case t.Short != "":
		if len(t.Short) != 2 {
			return fmt.Errorf("short topic name %q: want two characters", t.Short)
		}
		s.TopicIDType, s.TopicID = packet.TopicIDShort, packet.ShortTopicID([2]byte{t.Short[0], t.Short[1]})
	case t.Name == "":
		s.TopicIDType, s.TopicID = packet.TopicIDPredefined, t.Predefined
	default:
		s.TopicIDType, s.TopicName = packet.TopicIDNormal, []byte(t.Name)
	}
	m, err := c.exchange(ctx, s, func(m packet.Message) bool {
		sa, ok := m.(*packet.Suback)
		return ok && sa.MsgID == s.MsgID
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", t, err)
	}
	sa := m.(*packet.Suback)
	if sa.ReturnCode != packet.Accepted {
		return fmt.Errorf("subscribe %s: %w", t, sa.ReturnCode)
	}
	if s.TopicIDType == packet.TopicIDNormal && sa.TopicID != 0 && !strings.ContainsAny(t.Name, "+#") {
		c.topics[sa.TopicID] = t.Name
	}
	return nil
}

// Sleep tells the gateway the client sleeps for d (§6.14); Receive then
// wakes every d with a PINGREQ to fetch the buffered messages.
func (c *Client) Sleep(ctx context.Context, d time.Duration) error {
	_, err := c.exchange(ctx, &packet.Disconnect{HasDuration: true, Duration: packet.Seconds((d + time.Second - 1) / time.Second)},
		is[*packet.Disconnect])
	if err != nil {
		return fmt.Errorf("sleep: %w", err)
	}
	c.sleep = d
	return nil
}

// Ping sends PINGREQ and waits for PINGRESP; asleep, it carries the client
// id and so fetches the messages buffered for the client (§6.14).
func (c *Client) Ping(ctx context.Context) error {
	req := &packet.Pingreq{}
	if c.sleep > 0 {
		req.ClientID = []byte(c.opts.ClientID)
	}
	_, err := c.exchange(ctx, req, is[*packet.Pingresp])
	return err
}

// Receive returns the next message, waiting until ctx is done. Asleep, it
// wakes every sleep duration with Ping.
func (c *Client) Receive(ctx context.Context) (Message, error) {
	for len(c.queue) == 0 {
		if c.sleep > 0 {
			t := time.NewTimer(c.sleep)
			select {
			case <-ctx.Done():
				t.Stop()
				return Message{}, ctx.Err()
			case <-t.C:
			}
			if err := c.Ping(ctx); err != nil {
				return Message{}, err
			}
			continue
		}
		if _, err := c.read(ctx, time.Now().Add(c.opts.KeepAlive/2)); err != nil {
			if isCtxErr(err) {
				return Message{}, err
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				if err := c.Ping(ctx); err != nil { // keep the session alive
					return Message{}, err
				}
				continue
			}
			return Message{}, err
		}
	}
	m := c.queue[0]
	c.queue = c.queue[1:]
	return m, nil
}

// Disconnect sends DISCONNECT and waits briefly for the gateway's answer.
func (c *Client) Disconnect(ctx context.Context) error {
	c.sleep = 0
	_, err := c.exchange(ctx, &packet.Disconnect{}, is[*packet.Disconnect])
	return err
}
