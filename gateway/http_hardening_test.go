package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The server answers GET and HEAD only, with the content type of each
// path; other methods get 405 with Allow, and /static/ serves files, not a
// listing of the folder.
func TestHTTPMethodsAndContentTypes(t *testing.T) {
	g, err := New(httpTestConfig(t, ""), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	h := g.http.handler()
	do := func(method, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec
	}
	for _, tc := range []struct{ method, path string }{
		{"POST", "/metrics"}, {"PUT", "/status.json"}, {"DELETE", "/"}, {"POST", "/nothing"},
		{"OPTIONS", "/static/status.js"}, {"TRACE", "/healthz"}, {"PATCH", "/readyz"},
	} {
		rec := do(tc.method, tc.path)
		if rec.Code != http.StatusMethodNotAllowed || !strings.Contains(rec.Header().Get("Allow"), "GET") {
			t.Errorf("%s %s: %d, Allow %q; want 405 with GET allowed", tc.method, tc.path, rec.Code, rec.Header().Get("Allow"))
		}
	}
	for path, ct := range map[string]string{
		"/":                  "text/html; charset=utf-8",
		"/status.json":       "application/json",
		"/metrics":           "text/plain; version=0.0.4; charset=utf-8",
		"/healthz":           "text/plain; charset=utf-8",
		"/static/status.js":  "text/javascript; charset=utf-8",
		"/static/status.css": "text/css; charset=utf-8",
	} {
		for _, method := range []string{"GET", "HEAD"} {
			rec := do(method, path)
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != ct || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s %s: %d %q; want 200 %q with nosniff", method, path, rec.Code, rec.Header().Get("Content-Type"), ct)
			}
			if method == "HEAD" && rec.Body.Len() != 0 && path != "/metrics" && path != "/status.json" && path != "/healthz" {
				t.Errorf("HEAD %s: a body of %d bytes", path, rec.Body.Len())
			}
		}
	}
	for _, path := range []string{"/static/", "/static", "/static/index.html", "/static/../web/status.js", "/web/status.js"} {
		rec := do("GET", path)
		if rec.Code == http.StatusOK {
			t.Errorf("GET %s: 200 %q; want no listing and nothing outside the page's files", path, rec.Body.String())
		}
	}
}

// Requests that break HTTP get an error answer and close only their own
// connection: a header block larger than the limit gets 431, a malformed
// request line 400, and the server serves the next client.
func TestHTTPBadRequests(t *testing.T) {
	g, stop := startGateway(t, httpTestConfig(t, ""))
	defer stop()
	addr := g.HTTPAddr().String()
	raw := func(req string) string {
		t.Helper()
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("no answer to %.40q: %v", req, err)
		}
		return line
	}
	big := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n"
	if got := raw(big); !strings.Contains(got, " 431 ") {
		t.Errorf("a 64 KiB header: %q; want 431", got)
	}
	for _, req := range []string{"GARBAGE\r\n\r\n", "GET /healthz HTTP/9.9\r\n\r\n", "GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"} {
		if got := raw(req); !strings.Contains(got, " 400 ") && !strings.Contains(got, " 505 ") {
			t.Errorf("%q: %q; want 400 or 505", req, got)
		}
	}
	if got := raw("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); !strings.Contains(got, " 200 ") {
		t.Errorf("a good request after the bad ones: %q", got)
	}
}
