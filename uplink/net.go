package uplink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math"
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

// bucket is a token bucket: rate tokens per second, holding at most burst.
// A take of n tokens waits until the bucket holds min(n, burst) tokens and
// then takes all n, so the level may go below zero: a cost larger than the
// bucket passes as soon as the bucket is full, and the debt it leaves is
// paid off, at rate, before anything else passes. Nothing waits forever,
// and over any long run no more than burst + rate × time passes (plus the
// one large cost in progress). The caller holds the lock of the limiter.
type bucket struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate, burst float64) *bucket {
	if rate <= 0 {
		return nil
	}
	burst = max(burst, 1)
	return &bucket{rate: rate, burst: burst, tokens: burst}
}

// refill adds the tokens earned since the last call.
func (k *bucket) refill(now time.Time) {
	if !k.last.IsZero() && now.After(k.last) {
		k.tokens = min(k.burst, k.tokens+now.Sub(k.last).Seconds()*k.rate)
	}
	if now.After(k.last) {
		k.last = now
	}
}

// need returns how long until the bucket can give n tokens (0: now).
func (k *bucket) need(n float64) time.Duration {
	want := min(n, k.burst)
	if k.tokens >= want {
		return 0
	}
	return max(time.Millisecond, time.Duration(math.Ceil((want-k.tokens)/k.rate*float64(time.Second))))
}

// limiter paces the publishes to the cloud with a bucket of messages
// (RateLimit, RateBurst) and one of bytes (RateBytes, holding one second's
// worth). A publish takes from both or, when either is short, from
// neither. A nil limiter never waits.
type limiter struct {
	mu    sync.Mutex
	msgs  *bucket // nil: no message rate limit
	bytes *bucket // nil: no byte rate limit
}

func newLimiter(rate float64, burst int, rateBytes int64) *limiter {
	l := &limiter{msgs: newBucket(rate, float64(burst)), bytes: newBucket(float64(rateBytes), float64(rateBytes))}
	if l.msgs == nil && l.bytes == nil {
		return nil
	}
	return l
}

// take takes one message of size bytes and returns 0, or returns how long
// until both buckets can give it (and takes nothing).
func (l *limiter) take(now time.Time, size int) time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	if l.msgs != nil {
		l.msgs.refill(now)
		wait = l.msgs.need(1)
	}
	if l.bytes != nil {
		l.bytes.refill(now)
		wait = max(wait, l.bytes.need(float64(size)))
	}
	if wait > 0 {
		return wait
	}
	if l.msgs != nil {
		l.msgs.tokens--
	}
	if l.bytes != nil {
		l.bytes.tokens -= float64(size)
	}
	return 0
}

// wait takes one message of size bytes, waiting for it.
func (l *limiter) wait(ctx context.Context, size int) error {
	for {
		d := l.take(time.Now(), size)
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
