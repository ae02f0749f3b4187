// Package packaging holds the Debian packaging of Outpost (the nfpm recipe,
// the systemd unit, the maintainer scripts, udev rules and the default
// config) and, in this file, the tests that check it: the unit with
// systemd-analyze, the package that `make deb` builds with dpkg-deb and
// lintian, and an install, upgrade, remove and purge with dpkg in a
// throwaway mount namespace.
//
// The tools come from Debian packages (systemd, dpkg, lintian, util-linux);
// .ci/run installs them. Without one a test skips, and with CI=true it fails.
package packaging

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// maxExposure bounds the unit's `systemd-analyze security` exposure score
// (0 is best, 10 worst; below 2 is rated "OK"). The unit scores 1.5 with
// systemd 252: what is left is the network, which a gateway needs, and the
// serial ports and the group dialout, which the radios need.
const maxExposure = 2.0

var scratch string // removed after the tests

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "outpost-packaging-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	scratch = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// need returns the path of a tool that the test needs; without it the test
// skips, or fails under CI=true, where .ci/run must have installed it.
func need(t *testing.T, tool string) string {
	t.Helper()
	for _, dir := range []string{"", "/usr/sbin", "/sbin"} {
		name := tool
		if dir != "" {
			name = filepath.Join(dir, tool)
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed; .ci/run must install it", tool)
	}
	t.Skipf("%s is not installed", tool)
	return ""
}

// run runs a command and returns its combined output; a failure ends the
// test with that output.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// The package `make deb` builds for this machine's architecture, once for
// all the tests, and its files unpacked with dpkg-deb -x.
var built struct {
	once    sync.Once
	deb     string // the .deb
	root    string // its data, unpacked
	version string // packaging/deb-version.sh of the tree
	arch    string // Debian architecture
	log     string
	err     error
}

func buildDeb(t *testing.T) (deb, root string) {
	t.Helper()
	need(t, "make")
	need(t, "git")
	dpkg := need(t, "dpkg")
	need(t, "dpkg-deb")
	built.once.Do(func() {
		out, err := runErr("", nil, dpkg, "--print-architecture")
		if err != nil {
			built.err = fmt.Errorf("dpkg --print-architecture: %v\n%s", err, out)
			return
		}
		built.arch = strings.TrimSpace(out)
		if out, err = runErr("..", nil, "packaging/deb-version.sh"); err != nil {
			built.err = fmt.Errorf("deb-version.sh: %v\n%s", err, out)
			return
		}
		built.version = strings.TrimSpace(out)
		dist := filepath.Join(scratch, "dist")
		built.log, built.err = runErr("..", nil, "make", "deb", "DEB_ARCHES="+built.arch, "DEB_DIR="+dist)
		if built.err != nil {
			return
		}
		debs, _ := filepath.Glob(filepath.Join(dist, "*.deb"))
		if len(debs) != 1 {
			built.err = fmt.Errorf("make deb made %d packages in %s, want 1: %v", len(debs), dist, debs)
			return
		}
		built.deb = debs[0]
		built.root = filepath.Join(scratch, "root")
		if out, err := runErr("", nil, "dpkg-deb", "-x", built.deb, built.root); err != nil {
			built.err = fmt.Errorf("dpkg-deb -x: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatalf("make deb: %v\n%s", built.err, built.log)
	}
	switch built.arch {
	case "amd64", "arm64", "armhf":
	default:
		t.Skipf("make deb builds for amd64, arm64 and armhf; this machine is %s", built.arch)
	}
	return built.deb, built.root
}

// The package's name, files, control fields and maintainer scripts.
func TestPackageContents(t *testing.T) {
	deb, root := buildDeb(t)
	version := built.version + "-1"
	if want := "outpost_" + version + "_" + built.arch + ".deb"; filepath.Base(deb) != want {
		t.Errorf("package file %s, want %s", filepath.Base(deb), want)
	}

	field := func(name string) string {
		return strings.TrimSpace(run(t, "", nil, "dpkg-deb", "-f", deb, name))
	}
	for name, want := range map[string]string{
		"Package":      "outpost",
		"Version":      version,
		"Architecture": built.arch,
		"Section":      "net",
		"Priority":     "optional",
	} {
		if got := field(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if deps := field("Depends"); !slices.Contains(strings.Split(deps, ", "), "adduser") {
		t.Errorf("Depends: %q, want adduser (the postinst runs it)", deps)
	}
	if m := field("Maintainer"); !regexp.MustCompile(`^[^<>]+ <[^@<>\s]+@[^@<>\s]+>$`).MatchString(m) {
		t.Errorf("Maintainer %q is not \"Name <email>\"", m)
	}
	t.Logf("dpkg-deb -I:\n%s", run(t, "", nil, "dpkg-deb", "-I", deb))

	// Files, with their modes: exactly these and the folders above them.
	want := map[string]string{
		"./usr/bin/outpost":                                        "-rwxr-xr-x",
		"./etc/outpost/outpost.toml":                               "-rw-r--r--",
		"./usr/lib/systemd/system/outpost.service":                 "-rw-r--r--",
		"./usr/share/man/man1/outpost.1.gz":                        "-rw-r--r--",
		"./usr/share/doc/outpost/README.Debian":                    "-rw-r--r--",
		"./usr/share/doc/outpost/copyright":                        "-rw-r--r--",
		"./usr/share/doc/outpost/changelog.Debian.gz":              "-rw-r--r--",
		"./usr/share/doc/outpost/examples/99-outpost-radios.rules": "-rw-r--r--",
		"./usr/share/doc/outpost/examples/outpost.toml":            "-rw-r--r--",
		"./usr/share/lintian/overrides/outpost":                    "-rw-r--r--",
	}
	listing := run(t, "", nil, "dpkg-deb", "-c", deb)
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(listing), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c line %q", line)
		}
		name, mode, owner := f[len(f)-1], f[0], f[1]
		if owner != "root/root" && owner != "0/0" {
			t.Errorf("%s is owned by %s, want root", name, owner)
		}
		if strings.HasPrefix(mode, "d") {
			continue
		}
		got[name] = mode
	}
	for name, mode := range want {
		if got[name] == "" {
			t.Errorf("the package lacks %s", name)
		} else if got[name] != mode {
			t.Errorf("%s has mode %s, want %s", name, got[name], mode)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("the package has %s, which the test does not expect", name)
		}
	}

	// Control archive: the config is a conffile, the scripts are there.
	control := filepath.Join(t.TempDir(), "control")
	run(t, "", nil, "dpkg-deb", "-e", deb, control)
	conffiles, err := os.ReadFile(filepath.Join(control, "conffiles"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(conffiles)); got != "/etc/outpost/outpost.toml" {
		t.Errorf("conffiles: %q, want /etc/outpost/outpost.toml", got)
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		packed, err := os.ReadFile(filepath.Join(control, script))
		if err != nil {
			t.Errorf("the package has no %s: %v", script, err)
			continue
		}
		if src, _ := os.ReadFile(filepath.Join("scripts", script)); !bytes.Equal(packed, src) {
			t.Errorf("the package's %s is not packaging/scripts/%s", script, script)
		}
		if fi, _ := os.Stat(filepath.Join(control, script)); fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("the package's %s is not executable (%v)", script, fi.Mode())
		}
	}
	if _, err := os.Stat(filepath.Join(control, "preinst")); err == nil {
		t.Errorf("the package has a preinst, which the test does not expect")
	}

	// The binary runs and says which version it is.
	out := run(t, "", nil, filepath.Join(root, "usr/bin/outpost"), "version")
	if !strings.HasPrefix(out, "outpost ") {
		t.Errorf("outpost version: %q", out)
	}
	t.Logf("packaged %s", strings.TrimSpace(out))
}

// lintian finds no error; warnings and notes are listed in the log. Every
// override in lintian-overrides is explained by a comment and still used.
func TestLintian(t *testing.T) {
	lintian := need(t, "lintian")
	deb, _ := buildDeb(t)
	out, err := runErr("", nil, lintian, "--display-info", "--pedantic", "--display-experimental", deb)
	t.Logf("lintian %s:\n%s", filepath.Base(deb), out)
	var errs []string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "E: "):
			errs = append(errs, line)
		case strings.Contains(line, "unused-override") || strings.Contains(line, "mismatched-override"):
			errs = append(errs, line+" (remove it from packaging/lintian-overrides)")
		}
	}
	if len(errs) > 0 {
		t.Errorf("lintian:\n%s", strings.Join(errs, "\n"))
	}
	if err != nil && len(errs) == 0 {
		t.Errorf("lintian failed: %v", err)
	}

	data, err := os.ReadFile("lintian-overrides")
	if err != nil {
		t.Fatal(err)
	}
	explained := false
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "#"):
			explained = true
		case line == "":
			explained = false
		default:
			if !explained {
				t.Errorf("lintian-overrides: %q has no comment above it that says why", line)
			}
		}
	}
}

// systemd-analyze verify finds nothing to say about the unit (with the
// packaged binary and man page standing in for the installed ones).
func TestUnitVerify(t *testing.T) {
	analyze := need(t, "systemd-analyze")
	need(t, "man") // verify looks up Documentation=man:outpost(1)
	_, root := buildDeb(t)
	unit, err := os.ReadFile("outpost.service")
	if err != nil {
		t.Fatal(err)
	}
	const execStart = "ExecStart=/usr/bin/outpost "
	if !bytes.Contains(unit, []byte("\n"+execStart)) {
		t.Fatalf("outpost.service has no %q line", execStart)
	}
	unit = bytes.Replace(unit, []byte(execStart), []byte("ExecStart="+filepath.Join(root, "usr/bin/outpost")+" "), 1)
	path := filepath.Join(t.TempDir(), "outpost.service")
	if err := os.WriteFile(path, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, "", []string{"MANPATH=" + filepath.Join(root, "usr/share/man")}, analyze, "verify", path)
	if strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify has something to say:\n%s", out)
	}
}

// The unit's sandbox scores at most maxExposure in systemd-analyze security.
func TestUnitSecurity(t *testing.T) {
	analyze := need(t, "systemd-analyze")
	if help, _ := runErr("", nil, analyze, "--help"); !strings.Contains(help, "--offline") {
		t.Skip("this systemd-analyze has no --offline (systemd 252 and later have it)")
	}
	out := run(t, "", nil, analyze, "security", "--offline=true", "--no-pager", "outpost.service")
	m := regexp.MustCompile(`Overall exposure level for outpost\.service: ([0-9.]+) (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in the output of systemd-analyze security:\n%s", out)
	}
	score, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	var exposed []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "✗") {
			exposed = append(exposed, strings.Join(strings.Fields(line), " "))
		}
	}
	t.Logf("systemd-analyze security: exposure %.1f %s; exposed:\n%s", score, m[2], strings.Join(exposed, "\n"))
	if score > maxExposure {
		t.Errorf("exposure %.1f %s, want at most %.1f:\n%s", score, m[2], maxExposure, out)
	}
}

// The unit keeps what the gateway needs (notify, watchdog, serial ports, its
// user and folders) and the sandbox keeps its walls.
func TestUnitSettings(t *testing.T) {
	settings := unitSettings(t, "outpost.service")
	want := map[string][]string{
		"Type":                    {"notify"},
		"NotifyAccess":            {"main"},
		"ExecStart":               {"/usr/bin/outpost run -c /etc/outpost/outpost.toml"},
		"ExecReload":              {"/bin/kill -HUP $MAINPID"},
		"Restart":                 {"on-failure"},
		"RestartSec":              {"5"},
		"WatchdogSec":             {"30"},
		"TimeoutStopSec":          {"15"},
		"LimitNOFILE":             {"65536"},
		"Environment":             {"GOMEMLIMIT=200MiB"},
		"User":                    {"outpost"},
		"Group":                   {"outpost"},
		"SupplementaryGroups":     {"dialout"},
		"StateDirectory":          {"outpost"},
		"ConfigurationDirectory":  {"outpost"},
		"UMask":                   {"0027"},
		"NoNewPrivileges":         {"yes"},
		"CapabilityBoundingSet":   {""},
		"AmbientCapabilities":     {""},
		"ProtectSystem":           {"strict"},
		"ReadWritePaths":          {"/var/lib/outpost"},
		"ProtectHome":             {"yes"},
		"PrivateTmp":              {"yes"},
		"ProtectKernelTunables":   {"yes"},
		"ProtectKernelModules":    {"yes"},
		"ProtectKernelLogs":       {"yes"},
		"ProtectControlGroups":    {"yes"},
		"ProtectClock":            {"yes"},
		"ProtectHostname":         {"yes"},
		"LockPersonality":         {"yes"},
		"MemoryDenyWriteExecute":  {"yes"},
		"RestrictRealtime":        {"yes"},
		"RestrictSUIDSGID":        {"yes"},
		"RestrictNamespaces":      {"yes"},
		"RestrictAddressFamilies": {"AF_INET AF_INET6 AF_UNIX AF_NETLINK"},
		"SystemCallArchitectures": {"native"},
		"DevicePolicy":            {"closed"},
		"WantedBy":                {"multi-user.target"},
	}
	for key, values := range want {
		if got := settings[key]; !slices.Equal(got, values) {
			t.Errorf("%s=%q, want %q", key, got, values)
		}
	}
	if got := settings["SystemCallFilter"]; len(got) == 0 || got[0] != "@system-service" {
		t.Errorf("SystemCallFilter=%q, want @system-service first", got)
	}
	// PrivateDevices=yes would hide serial adapters plugged in later.
	if v, ok := settings["PrivateDevices"]; ok {
		t.Errorf("PrivateDevices=%q: the gateway must see the host's /dev for hot-plugged radios", v)
	}
	for _, dev := range []string{"char-ttyUSB rw", "char-ttyACM rw", "char-ttyAMA rw", "char-ttyS rw"} {
		if !slices.Contains(settings["DeviceAllow"], dev) {
			t.Errorf("DeviceAllow lacks %q (has %q)", dev, settings["DeviceAllow"])
		}
	}
}

// unitSettings reads a unit file into key -> values in file order.
func unitSettings(t *testing.T, path string) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string][]string{}
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: line %q is not key=value", path, line)
		}
		settings[key] = append(settings[key], value)
	}
	return settings
}

// The maintainer scripts are POSIX sh that stops on the first error.
func TestMaintainerScripts(t *testing.T) {
	sh := need(t, "sh")
	for _, name := range []string{"postinst", "prerm", "postrm"} {
		path := filepath.Join("scripts", name)
		run(t, "", nil, sh, "-n", path)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(data), "#!/bin/sh\n") {
			t.Errorf("%s does not start with #!/bin/sh", path)
		}
		if !regexp.MustCompile(`(?m)^set -e$`).Match(data) {
			t.Errorf("%s has no set -e", path)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("%s is not executable", path)
		}
	}
}

// Install, run, reinstall over a changed config, remove and purge the
// package with dpkg, in a mount namespace whose /etc, /var and /usr are
// overlays on a tmpfs and whose /run is empty, and a network namespace of
// its own: the real system's files, users, services and ports are not
// touched. Needs root and unshare (util-linux).
func TestInstallUpgradeRemovePurge(t *testing.T) {
	unshare := need(t, "unshare")
	need(t, "adduser")
	need(t, "setpriv")
	need(t, "systemd-analyze")
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root; the install test needs it")
		}
		t.Skip("the install test needs root (for mount namespaces)")
	}
	deb, _ := buildDeb(t)
	work := t.TempDir()
	for _, d := range []string{"/etc", "/var", "/usr", "/run"} {
		if strings.HasPrefix(work+"/", d+"/") {
			t.Skipf("the test's temporary folder %s is under %s, which the test covers", work, d)
		}
	}
	hostns, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	out, err := runErr("", []string{"LC_ALL=C"}, unshare, "--mount", "--net", "--propagation", "private", "--",
		"sh", "-c", installScript, "sh", deb, work, hostns)
	t.Logf("install script:\n%s", out)
	if err != nil {
		t.Fatalf("install script: %v", err)
	}
	phases := parseFacts(out)

	install := phases["install"]
	check := func(phase, key, want string) {
		t.Helper()
		if got := phases[phase][key]; got != want {
			t.Errorf("after %s: %s = %q, want %q", phase, key, got, want)
		}
	}
	check("install", "user", "/var/lib/outpost:/usr/sbin/nologin")
	check("install", "group", "outpost")
	check("install", "state", "outpost:outpost 750")
	check("install", "config", "root:outpost 640")
	check("install", "binary", "present")
	if w := install["wants"]; w != "/lib/systemd/system/outpost.service" && w != "/usr/lib/systemd/system/outpost.service" {
		t.Errorf("after install: multi-user.target.wants/outpost.service -> %q, want the unit", w)
	}
	check("install", "status", "ii")
	check("install", "check-as-outpost", "ok")
	check("install", "verify", "")
	check("install", "listening", "yes")
	check("install", "run-exit", "0")
	check("install", "spool", "outpost:outpost")
	check("install", "actions", "start")
	if !slices.Contains(strings.Fields(install["groups"]), "dialout") {
		t.Errorf("after install: outpost is in %q, want dialout among them", install["groups"])
	}

	// A second install runs every step again: nothing changes, the admin's
	// config stays, and the service is restarted rather than started.
	for _, key := range []string{"user", "uid", "group", "groups", "state", "config", "wants", "status"} {
		check("reinstall", key, install[key])
	}
	check("reinstall", "localchange", "yes")
	check("reinstall", "actions", "restart")

	check("remove", "binary", "absent")
	check("remove", "status", "rc")
	check("remove", "config", "root:outpost 640")
	check("remove", "localchange", "yes")
	check("remove", "state", "outpost:outpost 750")
	check("remove", "user", install["user"])
	check("remove", "actions", "stop")

	for _, key := range []string{"user", "group", "state", "config", "confdir", "binary", "wants", "actions"} {
		want := "absent"
		if key == "actions" {
			want = ""
		}
		check("purge", key, want)
	}
	if s := phases["purge"]["status"]; s != "absent" && s != "" && !strings.HasPrefix(s, "un") {
		t.Errorf("after purge: dpkg status %q, want the package gone", s)
	}
}

// installScript runs in the namespace as `sh -c installScript sh DEB WORK
// HOSTNS`, HOSTNS being the test's own mount namespace.
// It prints "== <phase>" and then key=value facts after each dpkg step.
const installScript = `
set -eu
deb=$1 work=$2 hostns=$3
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export DEBIAN_FRONTEND=noninteractive

# Mount nothing unless this is a mount namespace of its own.
if [ "$(readlink /proc/self/ns/mnt)" = "$hostns" ]; then
	echo "not in a private mount namespace" >&2
	exit 1
fi
mount -t tmpfs outpost-test "$work"
for d in etc var usr; do
	mkdir "$work/$d.upper" "$work/$d.work"
	mount -t overlay outpost-test -o "lowerdir=/$d,upperdir=$work/$d.upper,workdir=$work/$d.work" "/$d"
done
# An empty /run hides the host's systemd; /run/systemd/system makes the
# scripts believe that systemd runs, so that they ask deb-systemd-invoke to
# start, restart or stop the service. deb-systemd-invoke asks policy-rc.d
# first, and this one notes the action and forbids it.
mount -t tmpfs outpost-test /run
mkdir -p /run/systemd/system
printf '#!/bin/sh\necho "$2" >>%s/actions\nexit 101\n' "$work" >/usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d
: >"$work/actions"

# The actions asked for since the last call, on one line.
actions() {
	tr '\n' ' ' <"$work/actions" | sed 's/ $//'
	: >"$work/actions"
}

facts() {
	echo "== $1"
	if u=$(getent passwd outpost); then
		echo "user=$(echo "$u" | cut -d: -f6,7)"
	else
		echo "user=absent"
	fi
	echo "uid=$(id -u outpost 2>/dev/null || echo absent)"
	echo "group=$(getent group outpost >/dev/null && echo outpost || echo absent)"
	echo "groups=$(id -Gn outpost 2>/dev/null || true)"
	echo "state=$(stat -c '%U:%G %a' /var/lib/outpost 2>/dev/null || echo absent)"
	echo "config=$(stat -c '%U:%G %a' /etc/outpost/outpost.toml 2>/dev/null || echo absent)"
	echo "confdir=$(test -d /etc/outpost && echo present || echo absent)"
	echo "binary=$(test -x /usr/bin/outpost && echo present || echo absent)"
	echo "wants=$(readlink /etc/systemd/system/multi-user.target.wants/outpost.service || echo absent)"
	s=$(dpkg-query -W -f='${db:Status-Abbrev}' outpost 2>/dev/null) || s=absent
	echo "status=$(echo $s)"
	echo "localchange=$(grep -qx '# local change' /etc/outpost/outpost.toml 2>/dev/null && echo yes || echo no)"
	echo "actions=$(actions)"
}

dpkg --no-triggers -i "$deb"
facts install
if setpriv --reuid=outpost --regid=outpost --init-groups /usr/bin/outpost check -c /etc/outpost/outpost.toml >/dev/null 2>"$work/check.log"; then
	echo "check-as-outpost=ok"
else
	echo "check-as-outpost=failed: $(tr '\n' ' ' <"$work/check.log")"
fi
echo "verify=$(systemd-analyze verify /usr/lib/systemd/system/outpost.service 2>&1 | tr '\n' ' ')"

# The gateway runs as the user outpost on the packaged config, in the
# namespace's own network: it opens its spool in /var/lib/outpost, listens on
# port 1883 (hex 075B in /proc/net/tcp*), and stops cleanly on SIGTERM.
setpriv --reuid=outpost --regid=outpost --init-groups /usr/bin/outpost run -c /etc/outpost/outpost.toml >"$work/run.log" 2>&1 &
pid=$!
listening() { cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -Eq ':075B [0-9A-F]+:0000 0A'; }
i=0
while ! listening && [ $i -lt 300 ] && kill -0 $pid 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
echo "listening=$(listening && echo yes || echo no)"
kill -TERM $pid 2>/dev/null || true
rc=0
wait $pid || rc=$?
echo "run-exit=$rc"
echo "spool=$(stat -c '%U:%G' /var/lib/outpost/spool 2>/dev/null || echo absent)"
sed 's/^/run: /' "$work/run.log"

echo '# local change' >>/etc/outpost/outpost.toml
dpkg --no-triggers -i "$deb"
facts reinstall

dpkg --no-triggers -r outpost
facts remove

dpkg --no-triggers -P outpost
facts purge
`

// parseFacts reads the "== phase" and key=value lines of installScript.
func parseFacts(out string) map[string]map[string]string {
	phases := map[string]map[string]string{}
	var cur map[string]string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "== "); ok {
			cur = map[string]string{}
			phases[name] = cur
			continue
		}
		if key, value, ok := strings.Cut(line, "="); ok && cur != nil && regexp.MustCompile(`^[a-z-]+$`).MatchString(key) {
			cur[key] = strings.TrimSpace(value)
		}
	}
	return phases
}

// The packaged config passes `outpost check` with the packaged binary, and
// gives the Pi's paths and the LAN listener; configs/debian-package.toml is
// the same file, so that the configs test loads it too.
func TestDefaultConfig(t *testing.T) {
	_, root := buildDeb(t)
	out := run(t, "", nil, filepath.Join(root, "usr/bin/outpost"), "check", "-c", "outpost.toml")
	for _, want := range []string{
		`data_dir = "/var/lib/outpost"`,
		`address = ":1883"`,
		`type = "tcp"`,
		`allow_anonymous = true`,
		"[http]\naddress = \":9883\"", // metrics and the status page on the LAN
	} {
		if !strings.Contains(out, want) {
			t.Errorf("outpost check -c packaging/outpost.toml: no %s in\n%s", want, out)
		}
	}
	pkg, err := os.ReadFile("outpost.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join("..", "configs", "debian-package.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pkg, cfg) {
		t.Error("configs/debian-package.toml differs from packaging/outpost.toml: cp packaging/outpost.toml configs/debian-package.toml")
	}
}

// Every Go module linked into the binary has a paragraph in the copyright
// file ("Files: vendor/<module>/*" or a folder above it).
func TestCopyrightCoversModules(t *testing.T) {
	_, root := buildDeb(t)
	out := run(t, "", nil, "go", "version", "-m", filepath.Join(root, "usr/bin/outpost"))
	data, err := os.ReadFile("copyright")
	if err != nil {
		t.Fatal(err)
	}
	var covered []string
	for _, m := range regexp.MustCompile(`(?m)^(?:Files:)?\s+vendor/(\S+)/\*$`).FindAllStringSubmatch(string(data), -1) {
		covered = append(covered, m[1])
	}
	if !slices.Contains(covered, "go-stdlib") {
		t.Error("copyright has no paragraph for the Go standard library (vendor/go-stdlib/*)")
	}
	modules := 0
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "dep" {
			continue
		}
		modules++
		if !slices.ContainsFunc(covered, func(c string) bool { return f[1] == c || strings.HasPrefix(f[1], c+"/") }) {
			t.Errorf("packaging/copyright does not cover module %s %s: add a Files: vendor/%s/* paragraph with its copyright and license", f[1], f[2], f[1])
		}
	}
	if modules == 0 {
		t.Fatalf("go version -m lists no module:\n%s", out)
	}
}

// deb-version.sh turns git describe into a Debian version that sorts in the
// order of the commits.
func TestDebVersion(t *testing.T) {
	dpkg := need(t, "dpkg")
	tests := []struct{ describe, want string }{
		{"v1.2.3", "1.2.3"},
		{"v1.2.3-rc1", "1.2.3~rc1"},
		{"v1.2.3-4-gabc1234", "1.2.3+git20250102030405.abc1234"},
		{"v1.2.3-rc1-4-gabc1234", "1.2.3~rc1+git20250102030405.abc1234"},
		{"abc1234", "0.0.0~git20250102030405.abc1234"},
		{"abc1234-dirty", "0.0.0~git20250102030405.abc1234+dirty"},
		{"v1.2.3-4-gabc1234-dirty", "1.2.3+git20250102030405.abc1234+dirty"},
		{"2.0", "2.0"},
	}
	for _, tc := range tests {
		got := strings.TrimSpace(run(t, "", nil, "./deb-version.sh", tc.describe, "20250102030405"))
		if got != tc.want {
			t.Errorf("deb-version.sh %s: %q, want %q", tc.describe, got, tc.want)
		}
	}
	if out, err := runErr("", nil, "./deb-version.sh", "v1_bad", "20250102030405"); err == nil {
		t.Errorf("deb-version.sh v1_bad: %q, want an error", out)
	}

	// Each sorts before the next.
	order := []string{
		"0.0.0~git20250101000000.aaaaaaa",
		"0.0.0~git20250102000000.0000000",
		"0.1.0~rc1",
		"0.1.0",
		"0.1.0+git20250103000000.bbbbbbb",
		"0.1.0+git20250103000000.bbbbbbb+dirty",
		"0.1.1",
	}
	for i := 1; i < len(order); i++ {
		if _, err := runErr("", nil, dpkg, "--compare-versions", order[i-1]+"-1", "lt", order[i]+"-1"); err != nil {
			t.Errorf("%s does not sort before %s", order[i-1], order[i])
		}
	}

	// The tree's own version, from git, is valid.
	need(t, "git")
	if v, err := runErr("", nil, "./deb-version.sh"); err != nil {
		t.Errorf("deb-version.sh on this tree: %v\n%s", err, v)
	}
}

// The udev rules are well-formed: each rule is comma-separated
// KEY{attr}<op>"value" pairs of keys udev knows, every GOTO has its LABEL,
// and each chip of README.Debian has its line.
func TestUdevRules(t *testing.T) {
	data, err := os.ReadFile("99-outpost-radios.rules")
	if err != nil {
		t.Fatal(err)
	}
	pair := regexp.MustCompile(`^\s*([A-Z]+)(\{[^}]+\})?(==|!=|\+=|-=|:=|=)"([^"]*)"\s*$`)
	known := map[string]bool{
		"ACTION": true, "SUBSYSTEM": true, "SUBSYSTEMS": true, "KERNEL": true, "KERNELS": true,
		"ATTR": true, "ATTRS": true, "ENV": true, "IMPORT": true, "GOTO": true, "LABEL": true,
		"SYMLINK": true, "GROUP": true, "MODE": true, "OWNER": true, "TAG": true, "DRIVERS": true,
	}
	var gotos, labels []string
	for n, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line == "" || line[0] == '#' {
			continue
		}
		for _, p := range strings.Split(line, ",") {
			m := pair.FindStringSubmatch(p)
			if m == nil {
				t.Errorf("line %d: %q is not KEY<op>\"value\"", n+1, strings.TrimSpace(p))
				continue
			}
			if !known[m[1]] {
				t.Errorf("line %d: unknown key %s", n+1, m[1])
			}
			switch m[1] {
			case "GOTO":
				gotos = append(gotos, m[4])
			case "LABEL":
				labels = append(labels, m[4])
			}
		}
	}
	for _, g := range gotos {
		if !slices.Contains(labels, g) {
			t.Errorf("GOTO=%q has no LABEL", g)
		}
	}
	for _, id := range []string{
		`ENV{ID_VENDOR_ID}=="0403", ENV{ID_MODEL_ID}=="6015", ENV{OUTPOST_CHIP}="ftdi"`,
		`ENV{ID_VENDOR_ID}=="0403", ENV{ID_MODEL_ID}=="6001", ENV{OUTPOST_CHIP}="ftdi"`,
		`ENV{ID_VENDOR_ID}=="10c4", ENV{ID_MODEL_ID}=="ea60", ENV{OUTPOST_CHIP}="cp210x"`,
		`ENV{ID_VENDOR_ID}=="1a86", ENV{ID_MODEL_ID}=="7523", ENV{OUTPOST_CHIP}="ch340"`,
		`ENV{ID_VENDOR_ID}=="1a86", ENV{ID_MODEL_ID}=="55d4", ENV{OUTPOST_CHIP}="ch9102"`,
		`GROUP="dialout", MODE="0660"`,
		`SYMLINK+="outpost/$env{OUTPOST_CHIP}-$env{ID_SERIAL_SHORT}"`,
	} {
		if !bytes.Contains(data, []byte(id)) {
			t.Errorf("the rules lack %s", id)
		}
	}
}
