package gateway

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A reload reads the [http] password file again: a user added can log in,
// one removed can no longer (also not from the cache of checked
// credentials), a file that does not parse changes nothing, and a
// password_file added to a server that had none turns basic auth on.
func TestReloadHTTPPasswordFile(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "http.passwd")
	line := func(user, pass string) string {
		b, err := os.ReadFile(writePasswordFile(t, user, pass))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	conf := func(withPW bool) string {
		c := reloadConf("info", "127.0.0.1:0") + "[http]\naddress = \"127.0.0.1:0\"\n"
		if withPW {
			c += "password_file = \"" + pw + "\"\n"
		}
		return c
	}
	writeConf(t, pw, line("old", "o-pass"))
	g, file, _, _, _, _ := reloadGateway(t, conf(false))
	base := "http://" + g.HTTPAddr().String()
	get := func(user, pass string) int {
		t.Helper()
		code, _, _ := httpGet(t, base+"/metrics", user, pass)
		return code
	}
	if c := get("", ""); c != 200 {
		t.Fatalf("no auth configured: %d", c)
	}

	writeConf(t, file, conf(true))
	if r := g.Reload(); r.Err != nil || !slices.Contains(r.Applied, "http.password_file") || len(r.Restart) != 0 {
		t.Fatalf("Reload = %+v; want http.password_file applied", r)
	}
	if c := get("", ""); c != 401 {
		t.Errorf("after the reload that adds a password file, no credentials: %d; want 401", c)
	}
	if c := get("old", "o-pass"); c != 200 {
		t.Errorf("old/o-pass: %d; want 200", c)
	}

	writeConf(t, pw, line("new", "n-pass"))
	if r := g.Reload(); r.Err != nil || !slices.Contains(r.Applied, "auth files") {
		t.Fatalf("Reload = %+v", r)
	}
	if c := get("old", "o-pass"); c != 401 {
		t.Errorf("a user removed from the file (and cached before): %d; want 401", c)
	}
	if c := get("new", "n-pass"); c != 200 {
		t.Errorf("a user added to the file: %d; want 200", c)
	}

	writeConf(t, pw, "new:not-a-hash\n")
	if r := g.Reload(); r.Err == nil || !strings.Contains(r.Err.Error(), pw) {
		t.Fatalf("Reload of a bad password file = %+v; want its error", r)
	}
	if c := get("new", "n-pass"); c != 200 {
		t.Errorf("after a failed reload: %d; want the previous file in force", c)
	}
}
