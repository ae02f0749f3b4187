package gateway

import (
	"encoding/json"
	"testing"
	"time"
)

// /status.json lists at most pageMaxClients clients and counts them all,
// and counts the MQTT-SN clients of each transport from the whole list.
func TestStatusJSONBoundsTheClientList(t *testing.T) {
	defer func(n int) { pageMaxClients = n }(pageMaxClients)
	pageMaxClients = 2
	g, stop := startGateway(t, httpTestConfig(t, ""))
	defer stop()
	for _, id := range []string{"a", "b"} {
		c := dialMQTT(t, g.Addrs()["default"], id, true, 0)
		defer c.close()
	}
	snClient(t, g, "node1")
	var ps PageStatus
	for deadline := time.Now().Add(10 * time.Second); ; {
		code, _, body := httpGet(t, "http://"+g.HTTPAddr().String()+"/status.json", "", "")
		if code != 200 {
			t.Fatalf("GET /status.json: %d %s", code, body)
		}
		if err := json.Unmarshal([]byte(body), &ps); err != nil {
			t.Fatal(err)
		}
		if ps.ClientsTotal == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ps.ClientsTotal != 3 || len(ps.Clients) != 2 || ps.TransportClients["default"] != 1 {
		t.Errorf("%d clients listed, %d in all, %v by transport; want 2, 3 and default: 1", len(ps.Clients), ps.ClientsTotal, ps.TransportClients)
	}
}
