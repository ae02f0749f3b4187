package gateway

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// A node behind a LoRa bridge board (on a pty) shows on the status page
// with its link and the RSSI and SNR the board reported, and the link's
// state and the node's RSSI are in /metrics.
func TestStatusShowsSerialNodes(t *testing.T) {
	bm, bdev := openPty(t)
	cfg := serialE2EConfig(t, serialLink("lora", bdev, "bridge"))
	cfg.HTTP.Address = "127.0.0.1:0"
	board := newFakeRadio(t, bm, true, "0102")
	g, stop := startGateway(t, cfg)
	defer stop()
	n := board.node("0102")
	ack := snExchange(t, n.send, n.read, &packet.Connect{CleanSession: true, KeepAlive: 60, ClientID: []byte("lora1")}, packet.TypeConnack).(*packet.Connack)
	if ack.ReturnCode != packet.Accepted {
		t.Fatalf("CONNACK %v", ack.ReturnCode)
	}
	base := "http://" + g.HTTPAddr().String()

	var ps PageStatus
	var lora1 *PageClient
	deadline := time.Now().Add(10 * time.Second)
	for lora1 == nil {
		code, _, body := httpGet(t, base+"/status.json", "", "")
		if code != 200 {
			t.Fatalf("GET /status.json: %d %s", code, body)
		}
		ps = PageStatus{}
		if err := json.Unmarshal([]byte(body), &ps); err != nil {
			t.Fatal(err)
		}
		for i := range ps.Clients {
			if ps.Clients[i].ClientID == "lora1" && ps.Clients[i].State == "active" {
				lora1 = &ps.Clients[i]
			}
		}
		if lora1 == nil && time.Now().After(deadline) {
			t.Fatalf("lora1 is not an active client in /status.json: %+v", ps.Clients)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if lora1.Protocol != "MQTT-SN" || lora1.Link != "lora" || lora1.RSSI == nil || *lora1.RSSI != -80 ||
		lora1.SNR == nil || *lora1.SNR != 5 {
		t.Errorf("lora1 = %+v (RSSI %v, SNR %v); want MQTT-SN on lora at -80 dBm, 5 dB", *lora1, lora1.RSSI, lora1.SNR)
	}
	if len(ps.Serial) != 1 || ps.Serial[0].Name != "lora" || ps.Serial[0].State != "up" || ps.Serial[0].Nodes != 1 ||
		ps.Serial[0].FramesIn == 0 || ps.Serial[0].Device != bdev {
		t.Errorf("serial links: %+v; want lora up on %s with one node", ps.Serial, bdev)
	}

	m := metricsOf(t, base)
	if m[`outpost_serial_up{link="lora"}`] != 1 || m[`outpost_serial_nodes{link="lora"}`] != 1 {
		t.Errorf("outpost_serial_up %v, nodes %v; want 1 and 1", m[`outpost_serial_up{link="lora"}`], m[`outpost_serial_nodes{link="lora"}`])
	}
	var rssi []float64
	for k, v := range m {
		if strings.HasPrefix(k, `outpost_serial_node_rssi_dbm{link="lora",node=`) {
			rssi = append(rssi, v)
		}
	}
	if len(rssi) != 1 || rssi[0] != -80 {
		t.Errorf("node RSSI series %v; want one at -80", rssi)
	}
	if m[`outpost_mqttsn_clients{state="active"}`] != 1 || m[`outpost_mqttsn_messages_received_total{transport="lora"}`] != 0 {
		t.Errorf("MQTT-SN: %v active, %v messages on lora; want 1 and 0",
			m[`outpost_mqttsn_clients{state="active"}`], m[`outpost_mqttsn_messages_received_total{transport="lora"}`])
	}
}
