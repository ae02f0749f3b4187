package gateway

import (
	"crypto/tls"

	"github.com/outpost-gw/outpost/localbroker/auth"
)

// HTTPConfig is the [http] table: the server of /metrics (Prometheus),
// /healthz, /readyz and the status page at /.
type HTTPConfig struct {
	// Address is host:port; "" turns the server off (the embedded default).
	Address string `toml:"address"`
	// PasswordFile, when set, asks every request but /healthz and /readyz
	// for HTTP basic auth, checked against this file in mosquitto_passwd
	// format (any user in it may log in).
	PasswordFile string `toml:"password_file"`
	// CertFile and KeyFile (PEM), when set, serve HTTPS instead of HTTP.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
}

// Enabled reports whether the HTTP server runs.
func (h *HTTPConfig) Enabled() bool { return h.Address != "" }

func (h *HTTPConfig) resolvePaths(abs func(*string)) {
	abs(&h.PasswordFile)
	abs(&h.CertFile)
	abs(&h.KeyFile)
}

func (h *HTTPConfig) validate(p *problems) {
	if h.Address != "" {
		checkHostPort(p, "http.address", h.Address, `"127.0.0.1:9883"`)
	}
	if h.PasswordFile != "" && checkFile(p, "http.password_file", h.PasswordFile) {
		if pw, err := auth.LoadPasswordFile(h.PasswordFile); err != nil {
			p.add("http.password_file", "%v", err)
		} else if pw.Len() == 0 {
			p.add("http.password_file", "%s holds no user: nobody could log in", h.PasswordFile)
		}
	}
	switch {
	case h.CertFile == "" && h.KeyFile != "":
		p.add("http.key_file", "needs cert_file, the certificate of this key")
	case h.CertFile != "" && h.KeyFile == "":
		p.add("http.cert_file", "needs key_file, the certificate's private key")
	case h.CertFile != "":
		certOK := checkFile(p, "http.cert_file", h.CertFile)
		if checkFile(p, "http.key_file", h.KeyFile) && certOK {
			if _, err := tls.LoadX509KeyPair(h.CertFile, h.KeyFile); err != nil {
				p.add("http.cert_file", "cannot load the certificate and key: %v", err)
			}
		}
	}
}
