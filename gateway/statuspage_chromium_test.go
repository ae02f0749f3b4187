package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The status page in Debian's chromium (headless): it loads from a running
// gateway with nothing from elsewhere, shows a connected MQTT-SN client, and
// the spool depth it shows for an uplink whose cloud is down grows as
// messages are published. A screenshot goes to $OUTPOST_ARTIFACTS (the
// test's temporary folder when unset).
func TestStatusPageInChromium(t *testing.T) {
	bin := tool(t, "chromium")
	cfg := httpTestConfig(t, "mqtt://"+freeAddr(t)) // nothing listens: the messages stay spooled
	g, stop := startGateway(t, cfg)
	base := "http://" + g.HTTPAddr().String()
	sn := snClient(t, g, "sensor-7")
	// A client id is the client's to choose: the page shows it as text.
	const evil = `<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>`
	lan := dialMQTT(t, g.Addrs()["default"], evil, true, 0)

	b := startChromium(t, bin)
	page := b.open(t, base+"/")

	// The page's own script runs: the badge says ready, and the MQTT-SN
	// client is listed.
	page.waitFor(t, "the page to show the gateway ready and the MQTT-SN client sensor-7", `(() => {
		const ready = document.getElementById("ready").textContent === "ready";
		const row = [...document.querySelectorAll("#clients tbody tr")].find(r => r.dataset.client === "sensor-7");
		return ready && !!row && row.dataset.protocol === "MQTT-SN" &&
			row.querySelector("[data-field=state]").textContent === "active";
	})()`)
	page.waitFor(t, "the page to show the MQTT client with markup in its id as text", `(() => {
		const id = `+strconv.Quote(evil)+`;
		const row = [...document.querySelectorAll("#clients tbody tr")].find(r => r.dataset.client === id);
		return !!row && row.querySelector("[data-field=id]").textContent === id;
	})()`)
	if got := page.eval(t, `document.querySelectorAll("main img, main script").length + " " + String(window.pwned)`); got != "0 undefined" {
		t.Errorf("markup from a client id became elements or ran: %v; want \"0 undefined\"", got)
	}
	depth := `(() => {
		const row = [...document.querySelectorAll("#uplinks tbody tr")].find(r => r.dataset.uplink === "cloud");
		return row ? row.querySelector("[data-field=depth]").textContent : "no row";
	})()`
	if got := page.eval(t, depth); got != "0" {
		t.Errorf("spool depth shown before any publish: %v; want 0", got)
	}

	for i := range 3 {
		snPublish(t, sn, fmt.Sprintf("21.%d", i))
	}
	page.waitFor(t, "the page to show 3 messages spooled for the uplink cloud", depth+` === "3"`)
	if eta := page.eval(t, `[...document.querySelectorAll("#uplinks tbody tr")].find(r => r.dataset.uplink === "cloud").querySelector("[data-field=eta]").textContent`); eta != "not draining" {
		t.Errorf("drain time shown with the cloud down: %v; want \"not draining\"", eta)
	}
	// Everything the page loaded came from the gateway.
	if ext := page.eval(t, `performance.getEntriesByType("resource").map(e => e.name).filter(n => !n.startsWith(location.origin + "/")).join(" ")`); ext != "" {
		t.Errorf("the page loaded from elsewhere: %v", ext)
	}

	dir := os.Getenv("OUTPOST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	png := page.screenshot(t)
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 1000 {
		t.Fatalf("the screenshot is not a PNG (%d bytes)", len(png))
	}
	path := filepath.Join(dir, "status-page.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the status page: %s", path)
	b.close(t)
	lan.close()
	stop()
}

// --- a small client of the Chrome DevTools Protocol --------------------------

// browser is a headless chromium driven over its DevTools websocket.
type browser struct {
	cmd    *exec.Cmd
	conn   *websocket.Conn
	stderr *syncWriter // into a bytes.Buffer
	mu     sync.Mutex
	nextID int
	closed bool
}

// log returns what chromium wrote to its stderr, for failure messages.
func (b *browser) log() string {
	b.stderr.mu.Lock()
	defer b.stderr.mu.Unlock()
	return b.stderr.w.(*bytes.Buffer).String()
}

// startChromium starts chromium headless in its own process group with a
// fresh profile and connects to its DevTools endpoint.
func startChromium(t *testing.T, bin string) *browser {
	t.Helper()
	profile := t.TempDir()
	b := &browser{stderr: &syncWriter{w: new(bytes.Buffer)}}
	b.cmd = exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--window-size=1280,900", "--remote-debugging-address=127.0.0.1",
		"--remote-debugging-port=0", "--user-data-dir="+profile, "about:blank")
	b.cmd.Stderr = b.stderr
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- b.cmd.Wait() }()
	t.Cleanup(func() {
		// The whole group: chromium's zygote and renderers too.
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})

	// Chromium writes the port it picked and the browser's websocket path
	// to DevToolsActivePort in the profile.
	var port, path string
	deadline := time.Now().Add(30 * time.Second)
	for port == "" {
		data, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort"))
		if lines := strings.Split(string(data), "\n"); err == nil && len(lines) >= 2 && lines[1] != "" {
			port, path = lines[0], lines[1]
			break
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("chromium exited (%v) before it served DevTools:\n%s", err, b.log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromium wrote no DevToolsActivePort within 30s:\n%s", b.log())
		}
	}
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatalf("DevToolsActivePort: port %q", port)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://127.0.0.1:"+port+path, nil)
	if err != nil {
		t.Fatalf("connect to chromium's DevTools: %v", err)
	}
	conn.SetReadLimit(64 << 20) // screenshots
	b.conn = conn
	t.Cleanup(func() { conn.CloseNow() })
	return b
}

// cdpError is an error answer of the protocol.
type cdpError struct {
	Code    int
	Message string
}

// call sends one command (to a page when session is set) and returns its
// result, skipping the events that come before it.
func (b *browser) call(t *testing.T, session, method string, params any, result any) {
	t.Helper()
	if err := b.do(session, method, params, result); err != nil {
		t.Fatalf("%s: %v\nchromium's log:\n%s", method, err, b.log())
	}
}

func (b *browser) do(session, method string, params any, result any) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nextID++
	id := b.nextID
	req := map[string]any{"id": id, "method": method, "params": params}
	if params == nil {
		req["params"] = struct{}{}
	}
	if session != "" {
		req["sessionId"] = session
	}
	msg, err := json.Marshal(req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.conn.Write(ctx, websocket.MessageText, msg); err != nil {
		return err
	}
	for {
		_, data, err := b.conn.Read(ctx)
		if err != nil {
			return err
		}
		var resp struct {
			ID     int
			Result json.RawMessage
			Error  *cdpError
		}
		if err := json.Unmarshal(data, &resp); err != nil {
			return err
		}
		if resp.ID != id {
			continue // an event, or the answer to nothing we wait for
		}
		if resp.Error != nil {
			return fmt.Errorf("error %d: %s", resp.Error.Code, resp.Error.Message)
		}
		if result != nil {
			return json.Unmarshal(resp.Result, result)
		}
		return nil
	}
}

// page is one tab, attached in flat mode.
type page struct {
	b       *browser
	session string
}

// open makes a tab at url and attaches to it.
func (b *browser) open(t *testing.T, url string) *page {
	t.Helper()
	var target struct{ TargetID string }
	b.call(t, "", "Target.createTarget", map[string]any{"url": url}, &target)
	var att struct{ SessionID string }
	b.call(t, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att)
	if att.SessionID == "" {
		t.Fatal("Target.attachToTarget gave no session")
	}
	return &page{b: b, session: att.SessionID}
}

// evaluate runs a JavaScript expression in the page and returns its value.
func (p *page) evaluate(expr string) (any, error) {
	var res struct {
		Result struct {
			Value any
		}
		ExceptionDetails *struct {
			Text      string
			Exception *struct{ Description string }
		}
	}
	if err := p.b.do(p.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res); err != nil {
		return nil, err
	}
	if e := res.ExceptionDetails; e != nil {
		msg := e.Text
		if e.Exception != nil {
			msg += " " + e.Exception.Description
		}
		return nil, errors.New(msg)
	}
	return res.Result.Value, nil
}

func (p *page) eval(t *testing.T, expr string) any {
	t.Helper()
	v, err := p.evaluate(expr)
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls expr until it is true; the page refreshes every 2 seconds.
func (p *page) waitFor(t *testing.T, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last any
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = p.evaluate(expr)
		if last == true {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	html, _ := p.evaluate(`document.querySelector("main") ? document.querySelector("main").innerText : document.documentElement.outerHTML`)
	t.Fatalf("timed out waiting for %s (last %v, %v); the page shows:\n%v", what, last, lastErr, html)
}

// screenshot returns a PNG of the page.
func (p *page) screenshot(t *testing.T) []byte {
	t.Helper()
	var shot struct{ Data string }
	p.b.call(t, p.session, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		t.Fatal(err)
	}
	return png
}

// close asks the browser to quit.
func (b *browser) close(t *testing.T) {
	t.Helper()
	if b.closed {
		return
	}
	b.closed = true
	// The connection drops as the browser quits: no answer may come.
	_ = b.do("", "Browser.close", nil, nil)
}
