package gateway

import (
	"slices"

	"github.com/outpost-gw/outpost/localbroker/auth"
)

// httpAuth is the [http] password file that loadHTTPAuth read for a
// reload.
type httpAuth struct {
	pw *auth.PasswordFile // nil: no basic auth
}

// loadHTTPAuth reads cfg's [http] password_file anew (even when the key did
// not change), for a reload. It changes nothing; nil when the gateway runs
// no HTTP server. A file that does not parse fails naming its file and
// line; one without users fails too, as Load refuses it.
func (g *Gateway) loadHTTPAuth(cfg *Config) (*httpAuth, error) {
	if g.http == nil {
		return nil, nil
	}
	a := &httpAuth{}
	if f := cfg.HTTP.PasswordFile; f != "" {
		pw, err := auth.LoadPasswordFile(f)
		if err != nil {
			return nil, err
		}
		a.pw = pw
	}
	return a, nil
}

// applyHTTPAuth makes the HTTP server check basic auth against the file
// loadHTTPAuth read (or not at all), forgetting the credentials it had
// checked, and records the key in the config in force.
func (g *Gateway) applyHTTPAuth(a *httpAuth, cfg *Config, r *ReloadResult) {
	if a == nil {
		return
	}
	g.http.setPasswords(a.pw)
	if a.pw != nil && !slices.Contains(r.Applied, "auth files") {
		r.Applied = append(r.Applied, "auth files")
	}
	g.rl.cfg.HTTP.PasswordFile = cfg.HTTP.PasswordFile
}
