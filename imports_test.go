package outpost_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The import rules of ARCHITECTURE.md ("Packages and who may import whom"),
// checked against what `go list` says the code imports. When the map should
// change, change ARCHITECTURE.md and importRules together.
//
// Only the packages' own (non-test) imports are checked: a test may import
// what it needs, gateway's config loader for example.

// importRule says what the packages in one folder of the module may import.
type importRule struct {
	// dir is a folder of the module, relative to its root. The rule covers the
	// package there and every package below it that has no rule of its own.
	// A package may always import packages below dir.
	dir string
	// internal lists the folders of the module whose packages (and the
	// packages below them) the covered packages may import directly.
	internal []string
	// anyInternal allows every package of the module, except that nothing
	// imports cmd.
	anyInternal bool
	// external lists the import paths of third-party packages that may be
	// imported directly; each also allows the packages below it
	// ("github.com/dgraph-io/badger" allows "github.com/dgraph-io/badger/v4").
	external []string
	// anyExternal allows every third-party package.
	anyExternal bool
	// closed restricts the whole dependency set, not only the direct
	// imports: the standard library, the packages below dir, the external
	// packages and what those pull in.
	closed bool
}

var importRules = []importRule{
	{dir: "cmd/outpost", internal: []string{"gateway"}},
	{dir: "gateway", anyInternal: true, anyExternal: true},
	// localbroker/... reaches spool for persistence only. Its one
	// third-party package serves the ws/wss listeners that the data flow of
	// ARCHITECTURE.md shows for LAN clients.
	{dir: "localbroker", internal: []string{"spool"}, external: []string{"github.com/coder/websocket"}},
	{dir: "localbroker/packet", closed: true},
	{dir: "mqttsn", internal: []string{"localbroker"}},
	// mqttsn/client is the MQTT-SN client of `outpost sn pub|sub`: the codec
	// and the standard library, nothing of the gateway side.
	{dir: "mqttsn/client", internal: []string{"mqttsn/packet"}},
	{dir: "serialbus", external: []string{"go.bug.st/serial"}, closed: true},
	{dir: "spool", external: []string{"github.com/dgraph-io/badger"}},
	{dir: "uplink", internal: []string{"localbroker", "spool"}, external: []string{"github.com/eclipse/paho.golang"}},
	// bench/... holds the tools of the bench scripts (the mqttload load
	// generator), which encode and decode with the broker's packet codec, and
	// the MQTT-SN load generator (mqttsnload) with the MQTT-SN codec.
	{dir: "bench", internal: []string{"localbroker/packet", "mqttsn/packet"}},
	// internal/ptytest opens pty pairs for the serial-link tests of
	// serialbus and gateway; standard library only.
	{dir: "internal/ptytest", closed: true},
}

// listedPackage is the part of `go list -json` output that the rules need.
type listedPackage struct {
	ImportPath string
	Standard   bool
	GoFiles    []string
	CgoFiles   []string
	Imports    []string
	Deps       []string
	Error      *struct{ Err string }
}

func TestImports(t *testing.T) {
	modPath, pkgs := goList(t)
	problems := checkImportRules(modPath, pkgs, importRules)
	for _, p := range problems {
		t.Error(p)
	}
	if len(problems) > 0 {
		t.Log("the rules are in ARCHITECTURE.md (Packages and who may import whom) and in importRules in imports_test.go; " +
			"if the map should change, change both")
	}
}

// goList runs `go list -deps` over the module and returns its path and every
// package it lists (the module's and their dependencies), by import path.
func goList(t *testing.T) (string, map[string]*listedPackage) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("the go command is needed to list imports: %v", err)
	}
	modOut, err := exec.Command("go", "list", "-m", "-f", "{{.Path}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v%s", err, stderrOf(err))
	}
	modPath := strings.TrimSpace(string(modOut))

	// -e: a package that is mid-edit and does not compile is still listed
	// with the imports go list could read; its build error is for the other
	// tests to report.
	cmd := exec.Command("go", "list", "-e", "-deps",
		"-json=ImportPath,Standard,GoFiles,CgoFiles,Imports,Deps,Error", "./...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./...: %v%s", err, stderrOf(err))
	}
	pkgs := map[string]*listedPackage{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		p := new(listedPackage)
		if err := dec.Decode(p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs[p.ImportPath] = p
		if p.Error != nil && inModule(modPath, p.ImportPath) {
			t.Logf("note: %s has errors, its imports may be incomplete: %s", p.ImportPath, p.Error.Err)
		}
	}
	if len(pkgs) == 0 {
		t.Fatal("go list listed no packages")
	}
	return modPath, pkgs
}

func stderrOf(err error) string {
	if ee, ok := errors.AsType[*exec.ExitError](err); ok && len(ee.Stderr) > 0 {
		return "\n" + string(ee.Stderr)
	}
	return ""
}

// checkImportRules returns one message for each import that breaks the rules,
// and for each package of the module that no rule covers.
func checkImportRules(modPath string, pkgs map[string]*listedPackage, rules []importRule) []string {
	var problems []string
	report := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if !slices.Contains(problems, msg) {
			problems = append(problems, msg)
		}
	}

	var paths []string
	for path := range pkgs {
		if inModule(modPath, path) {
			paths = append(paths, path)
		}
	}
	slices.Sort(paths)

	for _, path := range paths {
		p := pkgs[path]
		if len(p.GoFiles) == 0 && len(p.CgoFiles) == 0 {
			continue // test-only folder (or no files for this platform): no imports of its own
		}
		rel := relPath(modPath, path)
		r := ruleFor(rules, rel)
		if r == nil {
			report("%s has no import rule: add its folder to ARCHITECTURE.md's package table and to importRules in imports_test.go", show(rel))
			continue
		}
		for _, imp := range p.Imports {
			if msg := checkDirect(modPath, pkgs, r, rel, imp); msg != "" {
				report("%s", msg)
			}
		}
		if r.closed {
			for _, msg := range checkClosed(modPath, pkgs, r, rel, p) {
				report("%s", msg)
			}
		}
	}
	return problems
}

// checkDirect checks one direct import imp of the package rel, covered by r.
func checkDirect(modPath string, pkgs map[string]*listedPackage, r *importRule, rel, imp string) string {
	if imp == "C" {
		if r.anyExternal {
			return ""
		}
		return fmt.Sprintf("%s imports \"C\" (cgo): %s", show(rel), r.allowed())
	}
	if isStandard(pkgs, imp) {
		return ""
	}
	if !inModule(modPath, imp) {
		if r.anyExternal || slices.ContainsFunc(r.external, func(e string) bool { return under(imp, e) }) {
			return ""
		}
		return fmt.Sprintf("%s imports %s: %s", show(rel), imp, r.allowed())
	}
	target := relPath(modPath, imp)
	switch {
	case under(target, r.dir):
		return ""
	case under(target, "cmd"):
		return fmt.Sprintf("%s imports %s: nothing imports cmd", show(rel), show(target))
	case under(target, "gateway") && !under(rel, "cmd"):
		return fmt.Sprintf("%s imports %s: nothing but cmd/outpost imports gateway", show(rel), show(target))
	case r.anyInternal:
		return ""
	case slices.ContainsFunc(r.internal, func(d string) bool { return under(target, d) }):
		return ""
	}
	return fmt.Sprintf("%s imports %s: %s", show(rel), show(target), r.allowed())
}

// checkClosed checks the whole dependency set of p, the package rel covered
// by the closed rule r.
func checkClosed(modPath string, pkgs map[string]*listedPackage, r *importRule, rel string, p *listedPackage) []string {
	// What the allowed third-party packages pull in is allowed too.
	pulled := map[string]bool{}
	for _, d := range p.Deps {
		if !slices.ContainsFunc(r.external, func(e string) bool { return under(d, e) }) {
			continue
		}
		if dp := pkgs[d]; dp != nil {
			for _, d := range dp.Deps {
				pulled[d] = true
			}
		}
	}
	allowed := func(d string) bool {
		switch {
		case isStandard(pkgs, d), pulled[d]:
			return true
		case inModule(modPath, d) && under(relPath(modPath, d), r.dir):
			return true
		}
		return slices.ContainsFunc(r.external, func(e string) bool { return under(d, e) })
	}
	// Report, once, the first package outside the allowed set on the way to
	// each disallowed dependency; a direct import is reported by checkDirect.
	var problems []string
	for _, d := range p.Deps {
		if allowed(d) {
			continue
		}
		chain := importChain(pkgs, p.ImportPath, d)
		i := slices.IndexFunc(chain[1:], func(c string) bool { return !allowed(c) }) + 1
		chain = chain[:i+1]
		first := chain[i]
		if slices.Contains(p.Imports, first) {
			continue
		}
		name := first
		if inModule(modPath, first) {
			name = show(relPath(modPath, first))
		}
		msg := fmt.Sprintf("%s depends on %s (%s): its whole dependency set is restricted; %s",
			show(rel), name, strings.Join(chain, " -> "), r.allowed())
		if !slices.Contains(problems, msg) {
			problems = append(problems, msg)
		}
	}
	return problems
}

// allowed says in words what the packages under r may import.
func (r *importRule) allowed() string {
	var parts []string
	if r.anyInternal {
		parts = append(parts, "any package of the module but cmd")
	} else {
		parts = append(parts, r.internal...)
	}
	if r.anyExternal {
		parts = append(parts, "any third-party package")
	} else {
		parts = append(parts, r.external...)
	}
	what := "the standard library"
	if len(parts) > 0 {
		what += ", " + strings.Join(parts, ", ")
	}
	return fmt.Sprintf("%s may import only %s and packages below %s (ARCHITECTURE.md)", show(r.dir), what, show(r.dir))
}

// ruleFor returns the rule with the longest dir that covers rel, or nil.
func ruleFor(rules []importRule, rel string) *importRule {
	var best *importRule
	for i := range rules {
		if under(rel, rules[i].dir) && (best == nil || len(rules[i].dir) > len(best.dir)) {
			best = &rules[i]
		}
	}
	return best
}

// importChain returns a shortest chain of imports from one package to
// another, both ends included; just the two ends when there is none.
func importChain(pkgs map[string]*listedPackage, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == to {
			var chain []string
			for p := to; p != ""; p = prev[p] {
				chain = append(chain, p)
			}
			slices.Reverse(chain)
			return chain
		}
		if p := pkgs[cur]; p != nil {
			for _, imp := range p.Imports {
				if _, seen := prev[imp]; !seen {
					prev[imp] = cur
					queue = append(queue, imp)
				}
			}
		}
	}
	return []string{from, to}
}

// isStandard reports whether path is a package of the standard library.
func isStandard(pkgs map[string]*listedPackage, path string) bool {
	if p := pkgs[path]; p != nil {
		return p.Standard
	}
	// Not listed: the standard library's import paths have no dot in their
	// first element.
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func inModule(modPath, path string) bool { return under(path, modPath) }

// relPath returns path relative to the module root ("" for the root).
func relPath(modPath, path string) string {
	return strings.TrimPrefix(strings.TrimPrefix(path, modPath), "/")
}

// under reports whether path is dir or below it; every path is under "".
func under(path, dir string) bool {
	return dir == "" || path == dir || strings.HasPrefix(path, dir+"/")
}

func show(rel string) string {
	if rel == "" {
		return "the module root package"
	}
	return rel
}

// TestImportsCheckerCatchesViolations runs the checker on made-up import graphs,
// so that TestImports is known to fail when an import breaks a rule.
func TestImportsCheckerCatchesViolations(t *testing.T) {
	const mod = "example.com/m"
	std := []string{"fmt", "io", "net", "os", "sync", "errors", "unsafe", "syscall"}

	// graph builds a package set from "importer: imported..." lines; a name
	// without a dot in its first element and not in std is a package of the
	// module. Deps are computed from the imports.
	graph := func(lines ...string) map[string]*listedPackage {
		pkgs := map[string]*listedPackage{}
		full := func(name string) string {
			if name == "" {
				return mod
			}
			first, _, _ := strings.Cut(name, "/")
			if slices.Contains(std, name) || name == "C" || strings.Contains(first, ".") {
				return name
			}
			return mod + "/" + name
		}
		get := func(path string) *listedPackage {
			if pkgs[path] == nil {
				pkgs[path] = &listedPackage{ImportPath: path, Standard: slices.Contains(std, path), GoFiles: []string{"x.go"}}
			}
			return pkgs[path]
		}
		for _, line := range lines {
			from, to, _ := strings.Cut(line, ":")
			p := get(full(strings.TrimSpace(from)))
			for _, imp := range strings.Fields(to) {
				if imp != "C" {
					get(full(imp))
				}
				p.Imports = append(p.Imports, full(imp))
			}
		}
		var deps func(path string, seen map[string]bool)
		deps = func(path string, seen map[string]bool) {
			if p := pkgs[path]; p != nil {
				for _, imp := range p.Imports {
					if !seen[imp] && imp != "C" {
						seen[imp] = true
						deps(imp, seen)
					}
				}
			}
		}
		for path, p := range pkgs {
			seen := map[string]bool{}
			deps(path, seen)
			for d := range seen {
				p.Deps = append(p.Deps, d)
			}
			slices.Sort(p.Deps)
		}
		return pkgs
	}

	// The shape ARCHITECTURE.md describes, with the third-party packages
	// the components are expected to use.
	good := []string{
		"cmd/outpost: gateway fmt os",
		"gateway: localbroker mqttsn serialbus spool uplink github.com/BurntSushi/toml",
		"localbroker: localbroker/packet localbroker/topic localbroker/auth spool net sync github.com/coder/websocket",
		"localbroker/packet: io errors",
		"localbroker/topic: errors",
		"localbroker/auth: os",
		"mqttsn: mqttsn/packet localbroker net",
		"mqttsn/packet: errors",
		"serialbus: go.bug.st/serial net",
		"go.bug.st/serial: golang.org/x/sys/unix github.com/creack/goselect",
		"golang.org/x/sys/unix: unsafe syscall",
		"spool: github.com/dgraph-io/badger/v4 github.com/dgraph-io/badger/v4/options",
		"github.com/dgraph-io/badger/v4: github.com/dgraph-io/ristretto/v2 github.com/dgraph-io/badger/v4/options",
		"uplink: localbroker spool github.com/eclipse/paho.golang/paho",
		"configs:", // test-only below
	}

	tests := []struct {
		name  string
		extra []string // lines added to good
		want  []string // substrings, one per expected problem; none: clean
	}{
		{name: "architecture as described"},
		{
			name:  "component reaches sideways",
			extra: []string{"mqttsn: serialbus"},
			want:  []string{"mqttsn imports serialbus: mqttsn may import only the standard library, localbroker"},
		},
		{
			name:  "component imports gateway",
			extra: []string{"spool: gateway"},
			want:  []string{"spool imports gateway: nothing but cmd/outpost imports gateway"},
		},
		{
			name:  "gateway imports cmd",
			extra: []string{"gateway: cmd/outpost"},
			want:  []string{"gateway imports cmd/outpost: nothing imports cmd"},
		},
		{
			name:  "cmd skips gateway",
			extra: []string{"cmd/outpost: localbroker"},
			want:  []string{"cmd/outpost imports localbroker: cmd/outpost may import only the standard library, gateway"},
		},
		{
			name:  "cmd uses a third-party package",
			extra: []string{"cmd/outpost: github.com/BurntSushi/toml"},
			want:  []string{"cmd/outpost imports github.com/BurntSushi/toml"},
		},
		{
			name:  "packet imports a sibling",
			extra: []string{"localbroker/packet: localbroker/topic"},
			want: []string{
				"localbroker/packet imports localbroker/topic: localbroker/packet may import only the standard library and packages below localbroker/packet",
			},
		},
		{
			name: "packet pulls a third-party package through its own subpackage",
			extra: []string{
				"localbroker/packet: localbroker/packet/props",
				"localbroker/packet/props: golang.org/x/text/unicode/norm",
			},
			want: []string{
				"localbroker/packet/props imports golang.org/x/text/unicode/norm",
				"localbroker/packet depends on golang.org/x/text/unicode/norm (" + mod + "/localbroker/packet -> " +
					mod + "/localbroker/packet/props -> golang.org/x/text/unicode/norm)",
			},
		},
		{
			name:  "packet uses cgo",
			extra: []string{"localbroker/packet: C"},
			want:  []string{"localbroker/packet imports \"C\" (cgo)"},
		},
		{
			name:  "serialbus imports a second serial library",
			extra: []string{"serialbus: github.com/tarm/serial"},
			want: []string{
				"serialbus imports github.com/tarm/serial",
			},
		},
		{
			name: "serialbus reaches a third-party package through a module package",
			extra: []string{
				"serialbus: serialbus/xbee",
				"serialbus/xbee: go.bug.st/serial/enumerator",
				"go.bug.st/serial/enumerator: golang.org/x/sys/unix",
			},
			// serialbus/xbee may use go.bug.st/serial/... and what it pulls.
		},
		{
			name:  "broker uses a third-party package",
			extra: []string{"localbroker: github.com/gorilla/websocket"},
			want:  []string{"localbroker imports github.com/gorilla/websocket: localbroker may import only the standard library, spool, github.com/coder/websocket"},
		},
		{
			name:  "broker subpackage imports mqttsn",
			extra: []string{"localbroker/topic: mqttsn"},
			want:  []string{"localbroker/topic imports mqttsn: localbroker may import only"},
		},
		{
			name:  "spool imports the broker",
			extra: []string{"spool: localbroker"},
			want:  []string{"spool imports localbroker: spool may import only the standard library, github.com/dgraph-io/badger"},
		},
		{
			name:  "uplink uses a second MQTT client",
			extra: []string{"uplink: github.com/eclipse/paho.mqtt.golang"},
			want:  []string{"uplink imports github.com/eclipse/paho.mqtt.golang"},
		},
		{
			name:  "folder without a rule",
			extra: []string{"internal/util: fmt"},
			want:  []string{"internal/util has no import rule"},
		},
		{
			name:  "module root package without a rule",
			extra: []string{": fmt"},
			want:  []string{"the module root package has no import rule"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lines := append(slices.Clone(good), tc.extra...)
			pkgs := graph(lines...)
			pkgs[mod+"/configs"].GoFiles = nil // a folder with tests only
			got := checkImportRules(mod, pkgs, importRules)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for _, w := range tc.want {
				if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, w) }) {
					t.Errorf("no problem mentions %q; got:\n%s", w, strings.Join(got, "\n"))
				}
			}
		})
	}
}
