package localbroker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/outpost-gw/outpost/localbroker/auth"
)

// listener accepts clients on one address with its own auth settings.
type listener struct {
	b      *Broker
	opts   *ListenerOptions
	tlsCfg *tls.Config
	// The access control, which Broker.SetAuth replaces at a reload.
	anon atomic.Bool // AllowAnonymous
	pw   atomic.Pointer[auth.PasswordFile]
	acl  atomic.Pointer[auth.ACL]

	mu   sync.Mutex
	ln   net.Listener
	http *http.Server

	st listenerCounters // for Broker.ListenerStats
}

func newListener(b *Broker, o *ListenerOptions) (*listener, error) {
	l := &listener{b: b, opts: o}
	l.anon.Store(o.AllowAnonymous)
	switch o.Kind {
	case KindTCP, KindWS:
	case KindTLS, KindWSS:
		cfg, err := serverTLS(o)
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", o.Name, err)
		}
		l.tlsCfg = cfg
	default:
		return nil, fmt.Errorf("listener %q: unknown kind %q (want tcp, tls, ws or wss)", o.Name, o.Kind)
	}
	if o.UseCNAsUsername && l.tlsCfg == nil {
		return nil, fmt.Errorf("listener %q: use_cn_as_username needs TLS", o.Name)
	}
	if o.PasswordFile != "" {
		pw, err := auth.LoadPasswordFile(o.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", o.Name, err)
		}
		l.pw.Store(pw)
	}
	if o.ACLFile != "" {
		acl, err := auth.LoadACLFile(o.ACLFile)
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", o.Name, err)
		}
		l.acl.Store(acl)
	}
	return l, nil
}

func serverTLS(o *ListenerOptions) (*tls.Config, error) {
	if o.CertFile == "" || o.KeyFile == "" {
		return nil, errors.New("tls needs a certificate and a key file")
	}
	cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load certificate: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", o.CAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if o.RequireClientCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	} else if o.RequireClientCert {
		return nil, errors.New("require_client_cert needs a CA file")
	}
	return cfg, nil
}

func (l *listener) listen() error {
	ln, err := net.Listen("tcp", l.opts.Address)
	if err != nil {
		return fmt.Errorf("listener %q: %w", l.opts.Name, err)
	}
	l.mu.Lock()
	l.ln = ln
	l.mu.Unlock()
	return nil
}

func (l *listener) addr() net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln == nil {
		return nil
	}
	return l.ln.Addr()
}

func (l *listener) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.http != nil {
		// Hijacked websocket connections are closed by the broker's kick.
		_ = l.http.Close()
	}
	if l.ln != nil {
		l.ln.Close()
	}
}

func (l *listener) serve(ctx context.Context) {
	switch l.opts.Kind {
	case KindWS, KindWSS:
		l.serveWS()
	default:
		l.serveTCP()
	}
}

func (l *listener) serveTCP() {
	var delay time.Duration
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, keep serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.b.log.Warn("accept failed", "listener", l.opts.Name, "err", err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		var tc *tls.Conn
		if l.tlsCfg != nil {
			tc = tls.Server(nc, l.tlsCfg)
			nc = tc
		}
		c := l.b.register(l, nc)
		if c == nil {
			continue
		}
		go func() {
			defer l.b.connWG.Done()
			if tc != nil {
				hctx, cancel := context.WithTimeout(l.b.runCtx, l.b.opts.ConnectTimeout)
				err := tc.HandshakeContext(hctx)
				cancel()
				if err != nil {
					c.log.Info("TLS handshake failed", "err", err)
					c.closeNow()
					l.b.unregister(c)
					return
				}
				c.certCN = peerCN(tc.ConnectionState())
			}
			c.serve()
		}()
	}
}

func peerCN(st tls.ConnectionState) string {
	if len(st.PeerCertificates) > 0 {
		return st.PeerCertificates[0].Subject.CommonName
	}
	return ""
}

// wsConn keeps the HTTP request's remote address.
type wsConn struct {
	net.Conn
	remote net.Addr
}

func (w wsConn) RemoteAddr() net.Addr { return w.remote }

type strAddr string

func (a strAddr) Network() string { return "tcp" }
func (a strAddr) String() string  { return string(a) }

func (l *listener) serveWS() {
	mux := http.NewServeMux()
	mux.HandleFunc(l.opts.WSPath, func(w http.ResponseWriter, r *http.Request) {
		wc, err := websocket.Accept(w, r, &websocket.AcceptOptions{
			// [MQTT-6.0.0-3] "mqtt" is the subprotocol; "mqttv3.1" is still
			// offered by some older JavaScript clients.
			Subprotocols: []string{"mqtt", "mqttv3.1"},
			// Browsers on other origins are normal MQTT dashboards; MQTT's
			// own authentication protects the broker, no cookies are used.
			InsecureSkipVerify: true,
		})
		if err != nil {
			return
		}
		if wc.Subprotocol() == "" {
			wc.Close(websocket.StatusProtocolError, "subprotocol mqtt required")
			return
		}
		wc.SetReadLimit(int64(l.b.opts.MaxPacketSize) + 5)
		// Not bound to the listener's context: at shutdown the broker kicks
		// each client so that its DISCONNECT 0x8B is flushed first.
		nc := wsConn{Conn: websocket.NetConn(context.Background(), wc, websocket.MessageBinary),
			remote: strAddr(r.RemoteAddr)}
		c := l.b.register(l, nc)
		if c == nil {
			return
		}
		defer l.b.connWG.Done()
		if r.TLS != nil {
			c.certCN = peerCN(*r.TLS)
		}
		c.serve()
	})
	// The HTTP server's own errors (failed TLS handshakes, bad requests)
	// go to the broker's logger, not to the global log package.
	srv := &http.Server{Handler: mux, TLSConfig: l.tlsCfg, ReadHeaderTimeout: l.b.opts.ConnectTimeout,
		ErrorLog: slog.NewLogLogger(l.b.log.With("listener", l.opts.Name).Handler(), slog.LevelInfo)}
	l.mu.Lock()
	l.http = srv
	l.mu.Unlock()
	var err error
	if l.tlsCfg != nil {
		err = srv.ServeTLS(l.ln, "", "")
	} else {
		err = srv.Serve(l.ln)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		l.b.log.Error("websocket listener stopped", "listener", l.opts.Name, "err", err)
	}
}

// register tracks a new connection (connWG.Add(1) for the caller's
// goroutine). Beyond MaxConnections the connection is marked to be refused
// at CONNECT; while shutting down it is closed at once and nil returned.
func (b *Broker) register(l *listener, nc net.Conn) *conn {
	c := newConn(b, l, nc)
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		nc.Close()
		return nil
	}
	if len(b.conns) >= b.opts.MaxConnections {
		if len(b.conns) >= b.opts.MaxConnections+64 {
			b.mu.Unlock()
			b.stats.refused.Add(1)
			nc.Close()
			return nil
		}
		c.overLimit = true
	}
	b.conns[c] = struct{}{}
	b.connWG.Add(1)
	b.mu.Unlock()
	return c
}

func (b *Broker) unregister(c *conn) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
}
