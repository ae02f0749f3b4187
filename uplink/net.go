package uplink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"
)

// dial opens the network connection to the cloud broker.
func (b *Bridge) dial(ctx context.Context) (net.Conn, error) {
	switch b.s.scheme {
	case "ws":
		return dialWS(ctx, b.s.url, nil)
	case "wss":
		cfg, err := b.tlsConfig()
		if err != nil {
			return nil, err
		}
		return dialWS(ctx, b.s.url, cfg)
	case "mqtts", "ssl", "tls":
		cfg, err := b.tlsConfig()
		if err != nil {
			return nil, err
		}
		d := tls.Dialer{Config: cfg}
		return d.DialContext(ctx, "tcp", b.s.addr)
	default:
		var d net.Dialer
		return d.DialContext(ctx, "tcp", b.s.addr)
	}
}

// tlsConfig reads the certificate files at each connection attempt, so
// that renewed certificates are used without a restart.
func (b *Bridge) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{
		ServerName: b.s.ServerName,
		NextProtos: b.s.ALPN,
		MinVersion: tls.VersionTLS12,
	}
	if cfg.ServerName == "" {
		cfg.ServerName = b.s.host
	}
	if b.s.CAFile != "" {
		pem, err := os.ReadFile(b.s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate", b.s.CAFile)
		}
		cfg.RootCAs = pool
	}
	if b.s.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(b.s.CertFile, b.s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// backoff returns the delay before attempt n (0-based): exponential from
// lo, capped at hi, with "equal jitter" (half fixed, half random) so that
// gateways that lost the same link do not come back in step.
func backoff(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	return half + rand.N(half+1)
}

// bucket is a token bucket: rate tokens per second, at most burst.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int) *bucket {
	if rate <= 0 {
		return nil
	}
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// take takes a token and returns 0, or returns how long until one is
// there (and takes nothing). A nil bucket never waits.
func (k *bucket) take(now time.Time) time.Duration {
	if k == nil {
		return 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.last.IsZero() {
		k.tokens = min(k.burst, k.tokens+now.Sub(k.last).Seconds()*k.rate)
	}
	k.last = now
	if k.tokens >= 1 {
		k.tokens--
		return 0
	}
	return max(time.Millisecond, time.Duration((1-k.tokens)/k.rate*float64(time.Second)))
}

// wait takes a token, waiting for it.
func (k *bucket) wait(ctx context.Context) error {
	for {
		d := k.take(time.Now())
		if d == 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// episode tracks a condition (messages dropped, refused, quarantined) so
// that it is logged when it starts and when it ends, not per message.
type episode struct {
	mu     sync.Mutex
	active bool
	n      uint64
}

// hit counts one occurrence and reports whether it starts an episode.
func (e *episode) hit() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	if e.active {
		return false
	}
	e.active = true
	return true
}

// end closes an active episode and returns how many it counted.
func (e *episode) end() (n uint64, ended bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.active {
		return 0, false
	}
	n, e.n, e.active = e.n, 0, false
	return n, true
}
