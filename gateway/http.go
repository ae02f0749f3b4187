package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-gw/outpost/localbroker/auth"
)

// httpServer is the component that serves, on [http] address:
//
//	/metrics      Prometheus text format (metrics.go)
//	/healthz      liveness: 200 while the process serves
//	/readyz       readiness: 200 once every component is ready, 503
//	              before that and from the moment the gateway stops
//	/             the status page (statuspage.go), /status.json its data
//
// With a password file, every path but /healthz and /readyz asks for HTTP
// basic auth: probes of an orchestrator or a load balancer carry no
// credentials, and the two answers tell nothing but "ok".
//
// It starts after the components it describes and, in reverse order, stops
// before them (only the systemd notifier is outside it), so that it never
// shows a half-started gateway as ready.
type httpServer struct {
	g     *Gateway
	cfg   HTTPConfig
	log   *slog.Logger
	pw    atomic.Pointer[auth.PasswordFile] // nil: no auth; a reload replaces it (setPasswords)
	tls   *tls.Config                       // nil: plain HTTP
	ready chan struct{}

	stopping atomic.Bool
	mu       sync.Mutex
	addr     net.Addr // bound address, once ready

	authMu sync.Mutex
	authOK map[[32]byte]time.Time // recently checked credentials, until when
}

// httpShutdownTimeout bounds how long a stop waits for requests in flight.
const httpShutdownTimeout = 3 * time.Second

// authCacheFor is how long a checked user and password stay valid without
// hashing them again: the status page asks every 2 seconds, and a
// mosquitto_passwd hash costs on a small board. The cache holds digests
// of the credentials, never the passwords.
const authCacheFor = time.Minute

// maxAuthCache bounds the remembered credentials.
const maxAuthCache = 32

func newHTTPServer(g *Gateway, cfg HTTPConfig, logger *slog.Logger) (*httpServer, error) {
	h := &httpServer{g: g, cfg: cfg, log: logger.With("component", "http"), ready: make(chan struct{}),
		authOK: map[[32]byte]time.Time{}}
	if cfg.PasswordFile != "" {
		pw, err := auth.LoadPasswordFile(cfg.PasswordFile)
		if err != nil {
			return nil, err
		}
		h.pw.Store(pw)
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load certificate: %w", err)
		}
		h.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return h, nil
}

func (h *httpServer) Name() string { return "http" }

// Ready is closed once the server's socket is bound.
func (h *httpServer) Ready() <-chan struct{} { return h.ready }

// Addr returns the bound address once Ready is closed, else nil.
func (h *httpServer) Addr() net.Addr {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.addr
}

// Run binds the address, serves until ctx is done, then stops taking
// requests and waits (at most httpShutdownTimeout) for those in flight.
func (h *httpServer) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", h.cfg.Address)
	if err != nil {
		return err
	}
	if h.tls != nil {
		ln = tls.NewListener(ln, h.tls)
	}
	srv := &http.Server{
		Handler:           h.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	h.mu.Lock()
	h.addr = ln.Addr()
	h.mu.Unlock()
	scheme := "http"
	if h.tls != nil {
		scheme = "https"
	}
	h.log.Info("serving metrics and the status page", "address", ln.Addr().String(), "scheme", scheme, "basic_auth", h.pw.Load() != nil)
	close(h.ready)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served: // the socket failed
		return err
	case <-ctx.Done():
	}
	h.stopping.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close() // requests still running: cut them
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// handler routes the server's paths.
func (h *httpServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.Handle("GET /metrics", h.auth(http.HandlerFunc(h.metrics)))
	mux.Handle("GET /status.json", h.auth(http.HandlerFunc(h.statusJSON)))
	mux.Handle("GET /{$}", h.auth(http.HandlerFunc(h.page)))
	mux.Handle("GET /static/", h.auth(staticHandler()))
	// GET (and HEAD) only: any other method gets 405 with Allow from the
	// mux, before auth, since it tells nothing.
	mux.Handle("GET /", h.auth(http.NotFoundHandler()))
	return securityHeaders(mux)
}

// securityHeaders keeps the page from being framed or sniffed, and from
// loading anything that is not its own.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		hd.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

func (h *httpServer) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, "ok")
}

// isReady reports whether every component started and the gateway is not
// stopping.
func (h *httpServer) isReady() bool {
	if h.stopping.Load() || h.g.stopping.Load() {
		return false
	}
	select {
	case <-h.g.ready:
		return true
	default:
		return false
	}
}

func (h *httpServer) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !h.isReady() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready")
		return
	}
	fmt.Fprintln(w, "ok")
}

// auth asks for HTTP basic auth when the server has a password file.
func (h *httpServer) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pw := h.pw.Load()
		if pw == nil {
			next.ServeHTTP(w, r)
			return
		}
		user, pass, ok := r.BasicAuth()
		if !ok || !h.checkPassword(pw, user, pass) {
			w.Header().Set("WWW-Authenticate", `Basic realm="outpost", charset="UTF-8"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkPassword checks user and pass against pw, or against the
// credentials that passed within authCacheFor.
func (h *httpServer) checkPassword(pw *auth.PasswordFile, user, pass string) bool {
	// A Basic auth user cannot hold ':', so "user:pass" names one pair.
	key := sha256.Sum256([]byte(user + ":" + pass))
	now := time.Now()
	h.authMu.Lock()
	for k, until := range h.authOK {
		if now.After(until) {
			delete(h.authOK, k)
		}
	}
	_, cached := h.authOK[key]
	h.authMu.Unlock()
	if cached {
		return true
	}
	if !pw.Check(user, []byte(pass)) {
		return false
	}
	h.authMu.Lock()
	if h.pw.Load() != pw {
		h.authMu.Unlock()
		return true // checked against the file of a reload just past: not kept
	}
	if len(h.authOK) >= maxAuthCache {
		clear(h.authOK)
	}
	h.authOK[key] = now.Add(authCacheFor)
	h.authMu.Unlock()
	return true
}

// setPasswords makes the server check basic auth against pw (nil: no auth)
// and forgets the credentials it had checked, for a reload.
func (h *httpServer) setPasswords(pw *auth.PasswordFile) {
	h.authMu.Lock()
	defer h.authMu.Unlock()
	h.pw.Store(pw)
	clear(h.authOK)
}
