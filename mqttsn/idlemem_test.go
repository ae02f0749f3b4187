package mqttsn

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"
	"unsafe"

	"github.com/outpost-gw/outpost/localbroker"
	"github.com/outpost-gw/outpost/mqttsn/packet"
)

// BenchmarkIdleClientMemory connects 10000 MQTT-SN clients over the
// in-memory network, each a typical device (CleanSession=false, one
// registered topic, one subscription), and reports the live heap each
// idle client costs the gateway and the in-process broker. The clients'
// own endpoints are dropped before measuring. Run it with -benchtime=1x
// (IDLE_HEAP_PROFILE=file writes the heap profile of the connected clients).
func BenchmarkIdleClientMemory(b *testing.B) {
	const n = 10000
	for b.Loop() {
		perClient := idleClientBytes(b, n)
		b.ReportMetric(perClient, "B/client")
	}
}

// idleClientBytes starts a broker and a gateway, connects n idle clients
// and returns the growth of the live heap per client.
func idleClientBytes(tb testing.TB, n int) float64 {
	br, err := localbroker.New(localbroker.Options{SysInterval: -1, Logger: testLogger()}, localbroker.Deps{})
	if err != nil {
		tb.Fatal(err)
	}
	stopB := runUntilStopped(tb, "broker", br.Run, br.Ready())
	defer stopB()
	mn := newMemNet()
	g, err := New(Options{
		Transports: []Transport{{Name: "mem", Conn: mn.listen("gw")}},
		MaxClients: n,
		Logger:     testLogger(),
	}, Deps{Broker: br})
	if err != nil {
		tb.Fatal(err)
	}
	stopG := runUntilStopped(tb, "gateway", g.Run, g.Ready())
	defer stopG()

	if os.Getenv("IDLE_HEAP_PROFILE") != "" {
		runtime.MemProfileRate = 1024
	}
	before := liveHeap()
	for i := range n {
		name := fmt.Sprintf("dev-%05d", i)
		c := &snClient{t: tb, conn: mn.listen(name), gw: memAddr("gw"), wait: time.Minute}
		c.connect(name, false, 3600)
		c.register("dev/" + name + "/up")
		if sa := c.subscribe(packet.TopicIDNormal, "dev/"+name+"/down", 0, packet.QoS1); sa.ReturnCode != packet.Accepted {
			tb.Fatalf("SUBACK %v", sa.ReturnCode)
		}
		// Forget the client's endpoint (and its read deadline's timer):
		// only the gateway's state remains.
		c.conn.SetReadDeadline(time.Time{})
		mn.mu.Lock()
		delete(mn.conns, name)
		mn.mu.Unlock()
	}
	if got := len(g.Clients()); got != n {
		tb.Fatalf("%d clients connected, want %d", got, n)
	}
	after := liveHeap()
	if path := os.Getenv("IDLE_HEAP_PROFILE"); path != "" {
		writeHeapProfile(tb, path)
	}
	return float64(int64(after)-int64(before)) / float64(n)
}

// liveHeap returns the bytes of live heap objects after collecting garbage.
func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func writeHeapProfile(tb testing.TB, path string) {
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		tb.Fatal(err)
	}
}

// A client's struct stays in the 384-byte size class: its small fields
// share a word, and every idle device pays for each byte beyond.
func TestClientStructSize(t *testing.T) {
	if n := unsafe.Sizeof(client{}); n > 384 {
		t.Fatalf("client is %d bytes, beyond the 384-byte size class", n)
	}
}
