package gateway

import (
	"maps"
	"slices"

	"github.com/outpost-gw/outpost/mqttsn"
)

// loadMQTTSNAccess reads cfg's [mqttsn] acl_file anew (even when the key did
// not change) and checks its usernames, for a reload. It changes nothing;
// nil when the gateway runs no MQTT-SN gateway. An ACL file that does not
// parse fails naming its file and line.
func (g *Gateway) loadMQTTSNAccess(cfg *Config) (*mqttsn.Access, error) {
	if g.mqttsn == nil {
		return nil, nil
	}
	return mqttsn.LoadAccess(cfg.MQTTSN.ACLFile, cfg.MQTTSN.Usernames)
}

// applyMQTTSNAccess gives the MQTT-SN devices the ACL and usernames that
// loadMQTTSNAccess read (see mqttsn.Gateway.SetAccess: connected devices
// get the new ACL at once; one whose username changes is disconnected, to
// connect again under the new one), and records them in the config in force.
func (g *Gateway) applyMQTTSNAccess(a *mqttsn.Access, cfg *Config, r *ReloadResult) {
	if a == nil {
		return
	}
	if n := g.mqttsn.SetAccess(a); n > 0 {
		g.log.Info("MQTT-SN devices disconnected: the new usernames mapping gives them another username", "devices", n)
		r.Disconnected += n
	}
	if cfg.MQTTSN.ACLFile != "" && !slices.Contains(r.Applied, "auth files") {
		r.Applied = append(r.Applied, "auth files")
	}
	old := g.rl.cfg
	old.MQTTSN.ACLFile = cfg.MQTTSN.ACLFile
	old.MQTTSN.Usernames = maps.Clone(cfg.MQTTSN.Usernames)
}
