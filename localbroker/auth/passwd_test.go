package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireTool returns the path of an external program the test needs. A
// missing program skips the test on a workstation but fails it in CI
// (CI=true), where .ci/run installs it.
func requireTool(t *testing.T, name string, fallbacks ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range fallbacks {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (apt-get install mosquitto mosquitto-clients)", name)
	}
	t.Skipf("%s is not installed", name)
	return ""
}

type userPass struct {
	user, pass string
}

func checkUsers(t *testing.T, pf *PasswordFile, users []userPass) {
	t.Helper()
	for _, u := range users {
		if !pf.Has(u.user) {
			t.Errorf("Has(%q) = false", u.user)
		}
		if !pf.Check(u.user, []byte(u.pass)) {
			t.Errorf("Check(%q, %q) = false, want true", u.user, u.pass)
		}
		for _, wrong := range []string{u.pass + "x", strings.ToUpper(u.pass) + "!", "", u.pass[:len(u.pass)/2]} {
			if wrong == u.pass {
				continue
			}
			if pf.Check(u.user, []byte(wrong)) {
				t.Errorf("Check(%q, %q) = true for a wrong password", u.user, wrong)
			}
		}
	}
}

func TestPasswordFileReadsMosquitto20Fixture(t *testing.T) {
	pf, err := LoadPasswordFile(filepath.Join("testdata", "mosquitto-2.0.passwd"))
	if err != nil {
		t.Fatal(err)
	}
	users := []userPass{
		{"alice", "alice-secret"}, // $7$, 101 iterations
		{"bob", "p@ss"},           // $6$
		{"carol", "x y:z"},        // $7$, 5000 iterations, ':' in the password
		{"dave", "pässwörd"},
		{"émile", "ünïcode user"},
	}
	checkUsers(t, pf, users)
	if !pf.Check("erin", nil) || !pf.Check("erin", []byte{}) {
		t.Error("erin's empty password is refused")
	}
	if pf.Check("erin", []byte("x")) {
		t.Error("erin accepts a non-empty password")
	}
	if got := pf.Len(); got != 6 {
		t.Errorf("Len() = %d, want 6", got)
	}
}

func TestPasswordFileReadsLongSalts(t *testing.T) {
	pf, err := LoadPasswordFile(filepath.Join("testdata", "long-salt.passwd"))
	if err != nil {
		t.Fatal(err)
	}
	checkUsers(t, pf, []userPass{{"frank", "frank-2.1"}, {"grace", "grace-1.x"}})
}

// TestPasswordFileReadsMosquittoPasswdOutput makes password files with the
// installed mosquitto_passwd and checks every kind of entry it writes.
func TestPasswordFileReadsMosquittoPasswdOutput(t *testing.T) {
	tool := requireTool(t, "mosquitto_passwd")
	path := filepath.Join(t.TempDir(), "passwd")
	users := []struct {
		userPass
		args []string
	}{
		{userPass{"u-default", "correct horse"}, nil},
		{userPass{"u-sha512", "battery staple"}, []string{"-H", "sha512"}},
		{userPass{"u-pbkdf2", "Tr0ub4dor&3"}, []string{"-H", "sha512-pbkdf2"}},
		{userPass{"u-iter", "many rounds"}, []string{"-I", "2345"}},
		{userPass{"u-symbols", `$7$:#!"' \`}, nil},
		{userPass{"ünï", "日本語のパスワード"}, nil},
	}
	var want []userPass
	for i, u := range users {
		args := append([]string{}, u.args...)
		if i == 0 {
			args = append(args, "-c")
		}
		args = append(args, "-b", path, u.user, u.pass)
		if out, err := exec.Command(tool, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd %v: %v\n%s", args, err, out)
		}
		want = append(want, u.userPass)
	}
	pf, err := LoadPasswordFile(path)
	if err != nil {
		raw, _ := os.ReadFile(path)
		t.Fatalf("%v\n%s", err, raw)
	}
	checkUsers(t, pf, want)
	if pf.Len() != len(users) {
		t.Errorf("Len() = %d, want %d", pf.Len(), len(users))
	}
}

func TestHashPasswordRoundTrip(t *testing.T) {
	for _, it := range []int{0, 1, 101, 2000} {
		t.Run(fmt.Sprint(it), func(t *testing.T) {
			h, err := HashPassword([]byte("s3cret\x00binary\xff"), it)
			if err != nil {
				t.Fatal(err)
			}
			wantIt := it
			if it == 0 {
				wantIt = DefaultIterations
			}
			if prefix := fmt.Sprintf("$7$%d$", wantIt); !strings.HasPrefix(h, prefix) {
				t.Errorf("HashPassword = %q, want prefix %q", h, prefix)
			}
			pf, err := ParsePasswordFile(strings.NewReader("u:"+h+"\n"), "hashed")
			if err != nil {
				t.Fatal(err)
			}
			if !pf.Check("u", []byte("s3cret\x00binary\xff")) {
				t.Error("Check refuses the hashed password")
			}
			// MQTT passwords are binary: the bytes after a NUL count.
			if pf.Check("u", []byte("s3cret")) || pf.Check("u", []byte("s3cret\x00binary")) {
				t.Error("Check accepts a prefix of the password")
			}
		})
	}
	a, _ := HashPassword([]byte("same"), 1)
	b, _ := HashPassword([]byte("same"), 1)
	if a == b {
		t.Error("two hashes of one password are equal: salt is not random")
	}
}

func TestHashPasswordRejectsBadIterations(t *testing.T) {
	tooMany := int64(math.MaxInt32)
	tooMany++ // a variable, so that this also compiles where int has 32 bits
	for _, it := range []int{-1, int(tooMany)} {
		if h, err := HashPassword([]byte("x"), it); err == nil {
			t.Errorf("HashPassword(_, %d) = %q, want an error", it, h)
		}
	}
}

func TestPasswordFileCheckUnknownUser(t *testing.T) {
	pf, err := LoadPasswordFile(filepath.Join("testdata", "mosquitto-2.0.passwd"))
	if err != nil {
		t.Fatal(err)
	}
	if pf.Has("mallory") || pf.Check("mallory", []byte("alice-secret")) {
		t.Error("unknown user accepted")
	}
	if pf.Check("Alice", []byte("alice-secret")) {
		t.Error("usernames must be case-sensitive")
	}
	var nilFile *PasswordFile
	if nilFile.Check("alice", nil) || nilFile.Has("alice") || nilFile.Len() != 0 {
		t.Error("nil *PasswordFile must accept nobody")
	}
	empty, err := ParsePasswordFile(strings.NewReader(""), "empty")
	if err != nil {
		t.Fatal(err)
	}
	if empty.Len() != 0 || empty.Check("", nil) || empty.Check("alice", []byte("x")) {
		t.Error("empty file must accept nobody")
	}
}

func TestLoadPasswordFileMissing(t *testing.T) {
	_, err := LoadPasswordFile(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want fs.ErrNotExist", err)
	}
}

const (
	validHash7 = "$7$101$UdIebBPvqgx28GTm$e2fC+gie22upef1UP/8dmwWihttQMnxulb7u+FB9TqWvoWBCWvx8xQnxVD60Fvb5PC383143LSXAbgqcSJVGhQ==" // alice-secret
	validHash6 = "$6$Ju5/OaSIKlDEe51Y$s8ppnLwv6Afzx/7uPO1ereqBzxgoRELuHFYuIiB9fc0H6sD4sknqPOgEHnHEQi8CwwG+kGU+alTRPUECrhSIKg=="     // p@ss
	salt12     = "UdIebBPvqgx28GTm"
	hash64     = "e2fC+gie22upef1UP/8dmwWihttQMnxulb7u+FB9TqWvoWBCWvx8xQnxVD60Fvb5PC383143LSXAbgqcSJVGhQ=="
)

func TestParsePasswordFileLayout(t *testing.T) {
	tests := []struct {
		name  string
		input string
		users []userPass
	}{
		{"comments and blank lines", "# a comment\n\n   \n\t# indented comment\nalice:" + validHash7 + "\n", []userPass{{"alice", "alice-secret"}}},
		{"CRLF line endings", "alice:" + validHash7 + "\r\nbob:" + validHash6 + "\r\n", []userPass{{"alice", "alice-secret"}, {"bob", "p@ss"}}},
		{"no final newline", "bob:" + validHash6, []userPass{{"bob", "p@ss"}}},
		{"blanks around fields", "  alice \t:\t " + validHash7 + "  \n", []userPass{{"alice", "alice-secret"}}},
		{"byte order mark", "\ufeffalice:" + validHash7 + "\n", []userPass{{"alice", "alice-secret"}}},
		{"username with spaces", "alice smith:" + validHash7 + "\n", []userPass{{"alice smith", "alice-secret"}}},
		{"empty file", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pf, err := ParsePasswordFile(strings.NewReader(tc.input), "pw")
			if err != nil {
				t.Fatal(err)
			}
			if pf.Len() != len(tc.users) {
				t.Errorf("Len() = %d, want %d", pf.Len(), len(tc.users))
			}
			for _, u := range tc.users {
				if !pf.Check(u.user, []byte(u.pass)) {
					t.Errorf("Check(%q, %q) = false", u.user, u.pass)
				}
			}
		})
	}
}

func TestParsePasswordFileErrors(t *testing.T) {
	tests := []struct {
		name        string
		input       string
		line        int
		msg         string // substring of the error
		unsupported bool   // errors.Is(err, ErrUnsupportedHash)
	}{
		{"missing colon", "# c\nalice " + validHash7 + "\n", 2, "missing ':'", false},
		{"bare username", "alice\n", 1, "missing ':'", false},
		{"empty username", ":" + validHash7 + "\n", 1, "empty username", false},
		{"blank username", "  :" + validHash7 + "\n", 1, "empty username", false},
		{"empty hash", "alice:\n", 1, "missing password hash", false},
		{"plain text password", "alice:secret\n", 1, "not hashed", false},
		{"duplicate user", "alice:" + validHash7 + "\n\nalice:" + validHash6 + "\n", 3, "already defined on line 1", false},
		{"argon2id PHC", "alice:$argon2id$v=19$m=47104,t=1,p=1$c2FsdA$aGFzaA\n", 1, "argon2id", true},
		{"argon2id $8$", "alice:$8$c2FsdA$aGFzaA\n", 1, "argon2id", true},
		{"unknown type", "alice:$5$" + salt12 + "$" + hash64 + "\n", 1, "$5$", true},
		{"empty type", "alice:$$" + salt12 + "$" + hash64 + "\n", 1, "$$", true},
		{"7 without iterations", "alice:$7$" + salt12 + "$" + hash64 + "\n", 1, "malformed $7$", false},
		{"7 extra field", "alice:$7$101$" + salt12 + "$" + hash64 + "$x\n", 1, "malformed $7$", false},
		{"6 extra field", "alice:$6$101$" + salt12 + "$" + hash64 + "\n", 1, "malformed $6$", false},
		{"6 missing hash", "alice:$6$" + salt12 + "\n", 1, "malformed $6$", false},
		{"zero iterations", "alice:$7$0$" + salt12 + "$" + hash64 + "\n", 1, "out of range", false},
		{"negative iterations", "alice:$7$-5$" + salt12 + "$" + hash64 + "\n", 1, "not a decimal", false},
		{"signed iterations", "alice:$7$+5$" + salt12 + "$" + hash64 + "\n", 1, "not a decimal", false},
		{"huge iterations", "alice:$7$2147483648$" + salt12 + "$" + hash64 + "\n", 1, "out of range", false},
		{"overflowing iterations", "alice:$7$99999999999999999999999$" + salt12 + "$" + hash64 + "\n", 1, "out of range", false},
		{"iterations with junk", "alice:$7$101x$" + salt12 + "$" + hash64 + "\n", 1, "not a decimal", false},
		{"bad salt base64", "alice:$7$101$Ud!ebBPvqgx28GTm$" + hash64 + "\n", 1, "salt is not valid base64", false},
		{"short salt", "alice:$7$101$c2FsdA==$" + hash64 + "\n", 1, "salt is 4 bytes", false},
		{"empty salt", "alice:$7$101$$" + hash64 + "\n", 1, "salt is 0 bytes", false},
		{"bad hash base64", "alice:$7$101$" + salt12 + "$e2fC+gie22upef1UP/8dmwW\n", 1, "hash is not valid base64", false},
		{"short hash", "alice:$7$101$" + salt12 + "$aGFzaA==\n", 1, "hash is 4 bytes", false},
		{"trailing field", "alice:" + validHash7 + ":extra\n", 1, "hash is not valid base64", false},
		{"invalid UTF-8 username", "al\xffce:" + validHash7 + "\n", 1, "not valid UTF-8", false},
		{"NUL in username", "al\x00ce:" + validHash7 + "\n", 1, "U+0000", false},
		{"line too long", "alice:" + strings.Repeat("A", maxLineBytes+1) + "\n", 1, "line longer than", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pf, err := ParsePasswordFile(strings.NewReader(tc.input), "users.pw")
			if err == nil {
				t.Fatalf("parsed %d users, want an error", pf.Len())
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %T %v, want *ParseError", err, err)
			}
			if pe.File != "users.pw" || pe.Line != tc.line {
				t.Errorf("error at %s:%d, want users.pw:%d (%v)", pe.File, pe.Line, tc.line, err)
			}
			prefix := fmt.Sprintf("users.pw:%d: ", tc.line)
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %q, want prefix %q and %q", err, prefix, tc.msg)
			}
			if got := errors.Is(err, ErrUnsupportedHash); got != tc.unsupported {
				t.Errorf("errors.Is(err, ErrUnsupportedHash) = %v, want %v", got, tc.unsupported)
			}
		})
	}
}

func TestPasswordFileRejectsArgon2idFixture(t *testing.T) {
	path := filepath.Join("testdata", "argon2id.passwd")
	_, err := LoadPasswordFile(path)
	if !errors.Is(err, ErrUnsupportedHash) {
		t.Fatalf("err = %v, want ErrUnsupportedHash", err)
	}
	if want := path + ":3: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %q, want it to start with %q", err, want)
	}
}
