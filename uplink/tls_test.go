package uplink

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPKI is a CA with a server and a client certificate, as PEM files.
type testPKI struct {
	dir                    string
	ca, serverCert, server string
	clientCert, client     string
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "outpost test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p.ca = p.write(t, "ca.pem", "CERTIFICATE", caDER)
	issue := func(name string, serial int64, tmpl *x509.Certificate) (certFile, keyFile string) {
		key := newKey(t)
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return p.write(t, name+".pem", "CERTIFICATE", der), p.write(t, name+".key", "EC PRIVATE KEY", kder)
	}
	p.serverCert, p.server = issue("server", 2, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "cloud.test"},
		DNSNames:    []string{"cloud.test"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	p.clientCert, p.client = issue("client", 3, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "gateway-7"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return p
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (p *testPKI) write(t testing.TB, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (p *testPKI) tlsDialer(t testing.TB, addr string) dialer {
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(p.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(p.clientCert, p.client)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: "cloud.test", Certificates: []tls.Certificate{cert}}
	return func() (net.Conn, error) {
		return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	}
}

// mqtts with mutual TLS: the bridge verifies the cloud against its CA file
// and server name, and presents a client certificate the cloud requires.
func TestMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	c := newCloud(t, fmt.Sprintf("cafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n", pki.ca, pki.serverCert, pki.server))
	c.start()
	sub := subscribeCloud(t, pki.tlsDialer(t, c.addr()), "", "", "site/#")

	url := fmt.Sprintf("mqtts://127.0.0.1:%d", c.port)
	opts := baseOptions(url, Rule{Direction: Out, Local: "d/#", Remote: "site/d/#"})
	opts.Name = "tls"
	opts.CAFile, opts.CertFile, opts.KeyFile = pki.ca, pki.clientCert, pki.client
	opts.ServerName = "cloud.test"
	opts.ALPN = []string{"mqtt"}
	e := newEnv(t, opts)
	e.waitOnline()
	e.publish("d/x", "over tls", 1)
	got := sub.waitN(t, 1, 10*time.Second)
	if got[0].topic != "site/d/x" || got[0].payload != "over tls" {
		t.Fatalf("cloud got %+v", got[0])
	}

	// Without the client certificate the cloud refuses the handshake; the
	// bridge stays offline and says why.
	bare := baseOptions(url, Rule{Direction: Out, Local: "d/#"})
	bare.Name = "nocert"
	bare.CAFile, bare.ServerName = pki.ca, "cloud.test"
	e2 := newEnv(t, bare)
	waitFor(t, 10*time.Second, "a failed attempt", func() bool { return e2.bridge.Stats().LastError != "" })
	// And a cloud whose certificate does not match the server name is not
	// trusted.
	wrong := baseOptions(url, Rule{Direction: Out, Local: "d/#"})
	wrong.Name = "wrongname"
	wrong.CAFile, wrong.CertFile, wrong.KeyFile, wrong.ServerName = pki.ca, pki.clientCert, pki.client, "other.test"
	e3 := newEnv(t, wrong)
	waitFor(t, 10*time.Second, "a failed attempt", func() bool {
		return strings.Contains(e3.bridge.Stats().LastError, "certificate")
	})
	if e2.bridge.Stats().State == StateOnline || e3.bridge.Stats().State == StateOnline {
		t.Fatal("a bridge without the right credentials got online")
	}
}
