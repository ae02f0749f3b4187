package gateway

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// A reload that removes an out-rule, and with it a priority class, while
// messages wait in the spool for that rule: they are still sent, under the
// topic they were spooled with, once the cloud is reachable, and new
// messages follow the new rules.
func TestReloadRemovesRuleWithSpooledMessages(t *testing.T) {
	cloudAddr := freeAddr(t) // nothing listens yet: the messages stay spooled
	dir := t.TempDir()
	file := filepath.Join(dir, "outpost.toml")
	conf := func(alarmRule bool) string {
		c := fmt.Sprintf("data_dir = \"data\"\n[broker]\nsys_interval = \"0s\"\n[[listener]]\nname = \"lan\"\naddress = \"127.0.0.1:0\"\n"+
			"allow_anonymous = true\n[mqttsn]\nenabled = false\n[[uplink]]\nname = \"cloud\"\nurl = \"mqtt://%s\"\n"+
			"reconnect_min = \"50ms\"\nreconnect_max = \"200ms\"\n"+
			"[[uplink.rule]]\ndirection = \"out\"\nlocal = \"data/#\"\nremote = \"site/data/#\"\n", cloudAddr)
		if alarmRule {
			c += "[[uplink.rule]]\ndirection = \"out\"\nlocal = \"alarm/#\"\nremote = \"site/alarm/#\"\npriority = 5\n"
		}
		return c
	}
	if err := os.WriteFile(file, []byte(conf(true)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	g, stop := startGateway(t, cfg)
	defer stop()
	g.SetReload(file, nil)
	lan := dialMQTT(t, g.Addrs()["lan"], "lan", true, 0)
	defer lan.close()
	lan.publish("alarm/fire", "spooled", false)
	lan.publish("data/1", "spooled", false)

	if err := os.WriteFile(file, []byte(conf(false)), 0o600); err != nil {
		t.Fatal(err)
	}
	r := g.Reload()
	if r.Err != nil || !slices.ContainsFunc(r.Applied, func(k string) bool { return strings.HasPrefix(k, "uplink[0].rule") }) || len(r.Restart) != 0 {
		t.Fatalf("Reload = %+v; want the rules applied", r)
	}
	lan.publish("alarm/smoke", "after", false) // no rule: stays local
	lan.publish("data/2", "after", false)

	// The cloud's log shows what it received (a subscriber could come too
	// late: the uplink connects and drains at once).
	cl := startCloudBrokerAt(t, cloudAddr)
	want := map[string]bool{"'site/alarm/fire'": false, "'site/data/1'": false, "'site/data/2'": false}
	deadline := time.After(20 * time.Second)
	for n := 0; n < len(want); {
		select {
		case l := <-cl.log:
			if !strings.Contains(l, "Received PUBLISH from") {
				continue
			}
			for k, seen := range want {
				if !seen && strings.Contains(l, k) {
					want[k] = true
					n++
				}
			}
			if strings.Contains(l, "alarm/smoke") {
				t.Errorf("the cloud got alarm/smoke, which no rule exports any more: %s", l)
			}
		case <-deadline:
			t.Fatalf("the cloud got %v within 20s; want them all", want)
		}
	}
}
