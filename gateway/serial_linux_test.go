//go:build linux

package gateway

import (
	"os"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/internal/ptytest"
)

// openPty opens a real pseudo-terminal pair: the master is the radio's
// side, played by the test; the returned path is the serial port.
func openPty(t *testing.T) (*os.File, string) { return ptytest.Open(t) }

// A real gateway with a [[serial]] link in the raw framing on a pty: the
// device on the line connects and publishes at QoS 1 to a pre-defined topic
// id of its own (client_predefined), which an MQTT subscriber gets.
func TestGatewayServesMQTTSNOverSerial(t *testing.T) {
	m, dev := openPty(t)
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.Broker.SysInterval = 0
	cfg.MQTTSN.ClientPredefined = map[string]map[string]string{"uart1": {"0x0010": "sensors/uart1/level"}}
	s := DefaultSerial()
	s.Name, s.Device = "uart", dev
	cfg.Serials = []SerialConfig{s}
	cfg.fillDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	g, stop := startGateway(t, cfg)
	sub := dialMQTT(t, g.Addrs()["default"], "lan", true, 0)
	sub.subscribe("sensors/#", 1)

	send := func(b []byte) {
		if _, err := m.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	read := func() []byte {
		_ = m.SetReadDeadline(time.Now().Add(10 * time.Second))
		return readRaw(t, m)
	}
	// The link opens the port soon after the start; what is written before
	// waits in the pty.
	snConnectAndPublish(t, send, read, "uart1", 0x0010, "77")
	if p := sub.expect("sensors/uart1/level=77")[0]; p.QoS != 1 {
		t.Errorf("delivered at QoS %d; want 1", p.QoS)
	}
	// The link and the MQTT-SN gateway are visible in the status snapshot.
	st := g.Status()
	if len(st.Serial) != 1 || st.Serial[0].FramesIn < 2 || st.Serial[0].FramesOut < 2 || st.Serial[0].Device != dev {
		t.Errorf("status serial = %+v; want one link on %s with frames both ways", st.Serial, dev)
	}
	if st.MQTTSN == nil || st.MQTTSN.Clients != 1 || st.MQTTSN.PublishIn != 1 {
		t.Errorf("status mqttsn = %+v; want one client that published once", st.MQTTSN)
	}
	sub.close()
	stop()
}
