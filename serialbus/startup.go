package serialbus

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"
)

// xbeeQueryTimeout bounds the wait for the answers to the start-up AT
// queries; datagrams wait for them (or for this) so that NP is known.
var xbeeQueryTimeout = 2 * time.Second

// startup runs once per opened port, before datagrams go out. A bridge board
// is asked for its STATUS; an XBee is asked for AP, AO, NP, SH and SL.
func (l *Link) startup(ctx context.Context, s *session) {
	defer close(s.ready)
	switch l.opts.Framing {
	case FramingBridge:
		b, _ := AppendBridge(nil, &BridgeFrame{Type: BridgeStatusRequest})
		l.sendCtrl(ctx, s, b)
	case FramingXBee, FramingXBeeAPI1:
		l.queryXBee(ctx, s)
	}
}

func (l *Link) sendCtrl(ctx context.Context, s *session, b []byte) bool {
	select {
	case s.ctrl <- b:
		return true
	case <-ctx.Done():
		return false
	}
}

func (l *Link) queryXBee(ctx context.Context, s *session) {
	escaped := l.opts.Framing == FramingXBee
	pending := map[byte]string{}
	for _, cmd := range []string{"AP", "AO", "NP", "SH", "SL"} {
		f := XBeeFrame{Type: XBeeATCommand, FrameID: l.nextFrameID(), Command: [2]byte{cmd[0], cmd[1]}}
		b, _ := AppendXBee(nil, &f, escaped)
		if !l.sendCtrl(ctx, s, b) {
			return
		}
		pending[f.FrameID] = cmd
	}
	timer := time.NewTimer(xbeeQueryTimeout)
	defer timer.Stop()
	var sh, sl []byte
	answered := 0
	for len(pending) > 0 {
		var r XBeeFrame
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			if answered == 0 {
				l.log.Warn("the XBee does not answer AT queries; check that it runs API firmware with AP=2 for framing \"xbee\" or AP=1 for \"xbee-api1\" (AP=0, transparent mode, cannot work), and that its BD matches the link's baud rate",
					"baud", l.opts.Baud, "waited", xbeeQueryTimeout)
			} else {
				l.log.Warn("the XBee did not answer every AT query", "unanswered", fmt.Sprint(pending))
			}
			return
		case r = <-s.at:
		}
		cmd, ok := pending[r.FrameID]
		if !ok || cmd != string(r.Command[:]) {
			continue
		}
		delete(pending, r.FrameID)
		answered++
		if r.Status != 0 {
			l.log.Info("the XBee does not support an AT query", "command", cmd, "status", r.Status)
			continue
		}
		v := r.Data
		switch cmd {
		case "AP":
			if len(v) == 1 {
				l.checkAPIMode(int(v[0]))
			}
		case "AO":
			if len(v) == 1 {
				l.checkAPIOutput(int(v[0]))
			}
		case "NP":
			if len(v) == 2 {
				np := int(binary.BigEndian.Uint16(v))
				l.statsMu.Lock()
				l.xbeeInfo.MaxPayload = np
				l.statsMu.Unlock()
				if np > 0 {
					l.learnMTU(np, "the XBee's NP")
				}
			}
		case "SH":
			sh = append([]byte(nil), v...)
		case "SL":
			sl = append([]byte(nil), v...)
		}
	}
	if len(sh) == 4 && len(sl) == 4 {
		a := uint64(binary.BigEndian.Uint32(sh))<<32 | uint64(binary.BigEndian.Uint32(sl))
		l.statsMu.Lock()
		l.xbeeInfo.Address = a
		l.statsMu.Unlock()
		l.log.Info("XBee", "address", XBeeAddr(a).String(), "mtu", l.MTU())
	}
}

func (l *Link) checkAPIMode(ap int) {
	l.statsMu.Lock()
	l.xbeeInfo.APIMode = ap
	l.statsMu.Unlock()
	want := 2
	if l.opts.Framing == FramingXBeeAPI1 {
		want = 1
	}
	if ap == want {
		return
	}
	switch ap {
	case 1:
		l.log.Warn("the XBee is in API mode 1 (AP=1, unescaped) but the link's framing is \"xbee\" (API mode 2, escaped): frames with 0x7E, 0x7D, 0x11 or 0x13 inside will be lost; set AP=2 on the module or framing \"xbee-api1\"")
	case 2:
		l.log.Warn("the XBee is in API mode 2 (AP=2, escaped) but the link's framing is \"xbee-api1\" (unescaped): frames with 0x7E, 0x7D, 0x11 or 0x13 inside will be lost; set AP=1 on the module or framing \"xbee\"")
	default:
		l.log.Warn("the XBee's API mode cannot carry datagrams for this link", "AP", ap, "framing", l.opts.Framing)
	}
}

func (l *Link) checkAPIOutput(ao int) {
	l.statsMu.Lock()
	l.xbeeInfo.APIOutput = ao
	l.statsMu.Unlock()
	switch ao {
	case 0:
	case 2:
		l.legacy.Store(true) // 802.15.4 legacy frames: RX64/RX16 in, TX64 out
	default:
		l.log.Warn("the XBee sends explicit receive frames (0x91), which the link does not read; set AO=0", "AO", ao)
	}
}
