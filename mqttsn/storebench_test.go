package mqttsn

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-gw/outpost/mqttsn/packet"
	"github.com/outpost-gw/outpost/spool"
)

// BenchmarkRegisterStored measures REGISTERs of new topic names by devices
// with CleanSession=false, each stored (a synced spool write) before its
// REGACK, from 1 and from 32 devices at once: the spool commits the writes
// that wait together with one sync, but no more wait together than the
// gateway has workers.
func BenchmarkRegisterStored(b *testing.B) {
	for _, devices := range []int{1, 32} {
		b.Run(strconv.Itoa(devices), func(b *testing.B) {
			st, err := spool.New(spool.Options{Dir: b.TempDir(), Logger: testLogger()})
			if err != nil {
				b.Fatal(err)
			}
			runUntilStopped(b, "spool", st.Run, st.Ready())
			kv, err := st.KV("mqttsn")
			if err != nil {
				b.Fatal(err)
			}
			br, _ := startBroker(b)
			g, err := New(Options{Transports: []Transport{{Name: "udp", Addr: "127.0.0.1:0"}}, Logger: testLogger(),
				MaxTopicsPerClient: 0xFFFE}, Deps{Broker: br, Store: kv})
			if err != nil {
				b.Fatal(err)
			}
			runUntilStopped(b, "gateway", g.Run, g.Ready())
			gw := g.Addrs()["udp"]
			cs := make([]*snClient, devices)
			for i := range cs {
				cs[i] = newSNClient(b, gw)
				cs[i].connect("reg-"+strconv.Itoa(i), false, 600)
			}
			syncs := st.Stats().Syncs
			b.ReportAllocs()
			start := time.Now()
			n := 0
			for b.Loop() {
				errs := make(chan error, devices)
				var wg sync.WaitGroup
				for i, c := range cs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						errs <- registerOnce(c.conn, gw, uint16(n%60000+1), fmt.Sprintf("bench/%d/%d", i, n), 10*time.Second)
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
				n++
			}
			el := time.Since(start)
			b.ReportMetric(float64(n*devices)/el.Seconds(), "registers/s")
			b.ReportMetric(float64(n*devices)/float64(max(1, st.Stats().Syncs-syncs)), "registers/sync")
		})
	}
}

// registerOnce sends one REGISTER and waits for its REGACK, at most wait.
func registerOnce(conn net.PacketConn, gw net.Addr, msgID uint16, name string, wait time.Duration) error {
	if _, err := conn.WriteTo(packet.Append(nil, &packet.Register{MsgID: msgID, TopicName: []byte(name)}), gw); err != nil {
		return err
	}
	buf := make([]byte, 64)
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	for {
		k, _, err := conn.ReadFrom(buf)
		if err != nil {
			return err
		}
		if m, err := packet.Decode(buf[:k]); err == nil {
			if ra, ok := m.(*packet.Regack); ok && ra.MsgID == msgID {
				if ra.ReturnCode != packet.Accepted {
					return fmt.Errorf("REGACK %v", ra.ReturnCode)
				}
				return nil
			}
		}
	}
}

// barrierStore passes writes to a real store, but holds each Set until want
// Sets are in flight at once (or until the deadline), and records the most
// that were.
type barrierStore struct {
	Store
	armed    atomic.Bool // until then, Sets pass straight through
	want     int
	deadline time.Time
	reached  chan struct{}

	mu                sync.Mutex
	inFlight, maxSeen int
}

func (s *barrierStore) Set(ctx context.Context, key string, val []byte) error {
	if !s.armed.Load() {
		return s.Store.Set(ctx, key, val)
	}
	s.mu.Lock()
	s.inFlight++
	if s.inFlight > s.maxSeen {
		s.maxSeen = s.inFlight
		if s.maxSeen == s.want {
			close(s.reached)
		}
	}
	s.mu.Unlock()
	select {
	case <-s.reached:
	case <-time.After(time.Until(s.deadline)):
	}
	err := s.Store.Set(ctx, key, val)
	s.mu.Lock()
	s.inFlight--
	s.mu.Unlock()
	return err
}

// The gateway does not take one client at a time to the session store:
// REGISTERs of several CleanSession=false devices at once are written at
// once, so that the spool commits them with one sync (a pool of workers no
// larger than the cores made each REGISTER wait for a sync of its own, and
// the gateway for it).
func TestStoreWritesOfClientsWaitTogether(t *testing.T) {
	const devices = 8
	st, err := spool.New(spool.Options{Dir: t.TempDir(), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	runUntilStopped(t, "spool", st.Run, st.Ready())
	kv, err := st.KV("mqttsn")
	if err != nil {
		t.Fatal(err)
	}
	bs := &barrierStore{Store: kv, want: devices, deadline: time.Now().Add(15 * time.Second), reached: make(chan struct{})}
	bs.armed.Store(true)
	b, _ := startBroker(t)
	g, err := New(Options{Transports: []Transport{{Name: "udp", Addr: "127.0.0.1:0"}}, Logger: testLogger()},
		Deps{Broker: b, Store: bs})
	if err != nil {
		t.Fatal(err)
	}
	runUntilStopped(t, "gateway", g.Run, g.Ready())
	gw := g.Addrs()["udp"]
	cs := make([]*snClient, devices)
	for i := range cs {
		cs[i] = newSNClient(t, gw)
		cs[i].connect("together-"+strconv.Itoa(i), false, 600) // nothing to store yet
	}
	errs := make(chan error, devices)
	for i, c := range cs {
		go func() { errs <- registerOnce(c.conn, gw, 1, "t/"+strconv.Itoa(i), time.Minute) }()
	}
	for range devices {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if bs.maxSeen < devices {
		t.Fatalf("at most %d session store writes at once for %d devices registering together, want %d", bs.maxSeen, devices, devices)
	}
}

// The gateway's stop stores the sessions of its CleanSession=false clients
// many at once, so that they share syncs: one after the other, 10,000
// devices took longer than the process's stop may.
func TestStopStoresClientsTogether(t *testing.T) {
	const devices = 16
	st, err := spool.New(spool.Options{Dir: t.TempDir(), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	runUntilStopped(t, "spool", st.Run, st.Ready())
	kv, err := st.KV("mqttsn")
	if err != nil {
		t.Fatal(err)
	}
	// The deadline is below runUntilStopped's wait for the stop.
	bs := &barrierStore{Store: kv, want: devices, reached: make(chan struct{})}
	b, _ := startBroker(t)
	g, err := New(Options{Transports: []Transport{{Name: "udp", Addr: "127.0.0.1:0"}}, Logger: testLogger()},
		Deps{Broker: b, Store: bs})
	if err != nil {
		t.Fatal(err)
	}
	stop := runUntilStopped(t, "gateway", g.Run, g.Ready())
	for i := range devices {
		c := newSNClient(t, g.Addrs()["udp"])
		c.connect("stopper-"+strconv.Itoa(i), false, 600)
		c.register("t/" + strconv.Itoa(i))
	}
	bs.deadline = time.Now().Add(5 * time.Second)
	bs.armed.Store(true)
	stop()
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if bs.maxSeen < devices {
		t.Fatalf("at most %d session store writes at once while stopping %d devices, want %d", bs.maxSeen, devices, devices)
	}
	if n := g.Stats().StoreErrors; n != 0 {
		t.Fatalf("StoreErrors %d", n)
	}
}
