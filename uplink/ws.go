package uplink

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// A minimal websocket client (RFC 6455) for MQTT over ws:// and wss://:
// the opening handshake with subprotocol "mqtt" [MQTT-6.0.0-3], then the
// MQTT byte stream in masked binary frames [MQTT-6.0.0-1]. Frames from the
// server may split or join MQTT packets freely [MQTT-6.0.0-2].

// wsGUID is the key suffix of RFC 6455 §1.3.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// maxWSControl is the largest control frame payload (RFC 6455 §5.5).
const maxWSControl = 125

// dialWS dials u (ws or wss) and performs the opening handshake.
func dialWS(ctx context.Context, u *url.URL, tlsCfg *tls.Config) (net.Conn, error) {
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "wss" {
			port = "443"
		}
		host = joinHostPort(u.Hostname(), port)
	}
	var raw net.Conn
	var err error
	if u.Scheme == "wss" {
		d := tls.Dialer{Config: tlsCfg}
		raw, err = d.DialContext(ctx, "tcp", host)
	} else {
		var d net.Dialer
		raw, err = d.DialContext(ctx, "tcp", host)
	}
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	c, err := wsHandshake(raw, u)
	if err != nil {
		raw.Close()
		return nil, err
	}
	_ = raw.SetDeadline(time.Time{})
	return c, nil
}

func wsHandshake(raw net.Conn, u *url.URL) (*wsConn, error) {
	var nonce [16]byte
	binary.LittleEndian.PutUint64(nonce[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(nonce[8:], rand.Uint64())
	key := base64.StdEncoding.EncodeToString(nonce[:])
	path := u.RequestURI()
	if u.Path == "" {
		path = "/mqtt"
		if u.RawQuery != "" {
			path += "?" + u.RawQuery
		}
	}
	req := "GET " + path + " HTTP/1.1\r\n" +
		"Host: " + u.Host + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Protocol: mqtt\r\n\r\n"
	if _, err := io.WriteString(raw, req); err != nil {
		return nil, fmt.Errorf("websocket handshake: %w", err)
	}
	br := bufio.NewReader(raw)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return nil, fmt.Errorf("websocket handshake: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, fmt.Errorf("websocket handshake: HTTP %s", resp.Status)
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	switch {
	case !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket"):
		return nil, errors.New("websocket handshake: no Upgrade: websocket")
	case !headerHasToken(resp.Header, "Connection", "upgrade"):
		return nil, errors.New("websocket handshake: no Connection: Upgrade")
	case resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]):
		return nil, errors.New("websocket handshake: wrong Sec-WebSocket-Accept")
	case resp.Header.Get("Sec-WebSocket-Protocol") != "mqtt":
		return nil, errors.New("websocket handshake: the server did not accept subprotocol mqtt")
	}
	return &wsConn{Conn: raw, br: br}, nil
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// wsConn carries a byte stream in websocket binary messages. One goroutine
// reads; writes may come from several (they are serialized).
type wsConn struct {
	net.Conn
	br *bufio.Reader

	left int64 // bytes left in the current data frame

	wmu    sync.Mutex
	wbuf   []byte
	closed bool
}

// Read reads the payload of binary (and continuation) frames, answering
// pings and ending at a close frame.
func (c *wsConn) Read(p []byte) (int, error) {
	for c.left == 0 {
		if err := c.nextFrame(); err != nil {
			return 0, err
		}
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.br.Read(p)
	c.left -= int64(n)
	return n, err
}

// nextFrame reads frame headers (and whole control frames) until a data
// frame starts; c.left is its payload length (possibly 0).
func (c *wsConn) nextFrame() error {
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return err
	}
	if h[0]&0x70 != 0 {
		return errors.New("websocket: reserved bits set")
	}
	if h[1]&0x80 != 0 {
		return errors.New("websocket: masked frame from the server") // RFC 6455 §5.1
	}
	op := h[0] & 0x0F
	n := int64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return err
		}
		n = int64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return err
		}
		u := binary.BigEndian.Uint64(b[:])
		if u > 1<<62 {
			return errors.New("websocket: frame too long")
		}
		n = int64(u)
	}
	switch op {
	case 0x0, 0x2: // continuation, binary
		c.left = n
		return nil
	case 0x8, 0x9, 0xA: // close, ping, pong
		if n > maxWSControl || h[0]&0x80 == 0 {
			return errors.New("websocket: bad control frame")
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(c.br, payload); err != nil {
			return err
		}
		switch op {
		case 0x8:
			_ = c.writeFrame(0x8, payload[:min(len(payload), 2)])
			return io.EOF
		case 0x9:
			return c.writeFrame(0xA, payload)
		}
		return nil
	default:
		return fmt.Errorf("websocket: unexpected opcode %#x", op)
	}
}

// Write sends p as one masked binary frame.
func (c *wsConn) Write(p []byte) (int, error) {
	if err := c.writeFrame(0x2, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) writeFrame(op byte, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	b := append(c.wbuf[:0], 0x80|op)
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	mask := rand.Uint32()
	b = binary.BigEndian.AppendUint32(b, mask)
	key := b[len(b)-4:]
	start := len(b)
	b = append(b, p...)
	for i := range b[start:] {
		b[start+i] ^= key[i&3]
	}
	_, err := c.Conn.Write(b)
	if cap(b) <= 64<<10 {
		c.wbuf = b[:0]
	}
	return err
}

// Close sends a normal close frame (best effort) and closes the
// connection.
func (c *wsConn) Close() error {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.writeFrame(0x8, []byte{0x03, 0xE8}) // 1000 normal closure
	c.wmu.Lock()
	c.closed = true
	c.wmu.Unlock()
	return c.Conn.Close()
}
