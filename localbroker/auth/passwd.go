package auth

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DefaultIterations is the PBKDF2 iteration count [HashPassword] uses when
// asked for 0, the default of mosquitto_passwd 2.1 (2.0 used 101).
const DefaultIterations = 1000

const (
	hashLen     = sha512.Size // every mosquitto hash is 64 bytes
	saltLen     = 12          // what mosquitto_passwd 2.0 writes and every 2.x reads
	longSaltLen = 64          // what mosquitto_passwd 2.1 writes
	maxUsername = 65535       // MQTT 5.0 §1.5.4: a UTF-8 string is at most 65535 bytes
)

type hashKind uint8

const (
	hashSHA512 hashKind = 6 // "$6$salt$hash": SHA-512(password || salt), mosquitto 1.x
	hashPBKDF2 hashKind = 7 // "$7$iterations$salt$hash": PBKDF2-HMAC-SHA512, mosquitto 2.x
)

// pwEntry is one decoded password hash.
type pwEntry struct {
	kind       hashKind
	iterations int // hashPBKDF2 only
	salt       []byte
	hash       []byte // hashLen bytes
	line       int
}

// derive hashes password the way e was made. It returns nil if the hash
// cannot be computed, which never compares equal to e.hash.
func (e *pwEntry) derive(password []byte) []byte {
	switch e.kind {
	case hashSHA512:
		h := sha512.New()
		h.Write(password)
		h.Write(e.salt)
		return h.Sum(nil)
	case hashPBKDF2:
		key, err := pbkdf2.Key(sha512.New, string(password), e.salt, e.iterations, hashLen)
		if err != nil {
			return nil
		}
		return key
	}
	return nil
}

// PasswordFile is a parsed mosquitto password file: usernames and their
// password hashes. It is read-only and safe for concurrent use.
type PasswordFile struct {
	name    string
	entries map[string]*pwEntry
	// dummy is hashed when a username is unknown, so that Check takes as
	// long for a missing user as for a wrong password and does not tell an
	// attacker which usernames exist.
	dummy *pwEntry
}

// LoadPasswordFile reads and parses the mosquitto password file at path.
func LoadPasswordFile(path string) (*PasswordFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParsePasswordFile(f, path)
}

// ParsePasswordFile parses a mosquitto password file from r; name is used in
// error messages (usually the path).
//
// Each line is "username:hash" as written by mosquitto_passwd. Blank lines
// and lines whose first non-blank character is '#' are ignored; blanks
// around the username and the hash are trimmed, as mosquitto does. The hash
// must be one of
//
//	$7$<iterations>$<base64 salt>$<base64 hash>   PBKDF2-HMAC-SHA512 (mosquitto 2.x)
//	$6$<base64 salt>$<base64 hash>                SHA-512(password+salt) (mosquitto 1.x)
//
// with a 12-byte (mosquitto 2.0) or 64-byte (mosquitto 2.1) salt, a 64-byte
// hash and standard padded base64. Where mosquitto logs and drops a bad line,
// ParsePasswordFile fails with a [*ParseError] naming the line: a line without
// ':', an empty username or hash, a plain-text password, a malformed hash,
// a duplicate username, and a hash type it cannot verify (mosquitto 2.1's
// argon2id, "$argon2id$..." or "$8$...", wraps [ErrUnsupportedHash]).
func ParsePasswordFile(r io.Reader, name string) (*PasswordFile, error) {
	pf := &PasswordFile{name: name, entries: make(map[string]*pwEntry)}
	err := scanLines(r, name, func(n int, line string) error {
		t := trimBlanks(line)
		if t == "" || t[0] == '#' {
			return nil
		}
		user, hash, ok := strings.Cut(t, ":")
		if !ok {
			return &ParseError{File: name, Line: n, Msg: `missing ':' between username and password hash`}
		}
		user, hash = trimBlanks(user), trimBlanks(hash)
		if err := checkUsername(user); err != nil {
			return &ParseError{File: name, Line: n, Msg: err.Error()}
		}
		e, err := parseHash(hash)
		if err != nil {
			return &ParseError{File: name, Line: n, Msg: fmt.Sprintf("user %q", user), Err: err}
		}
		if prev, dup := pf.entries[user]; dup {
			return &ParseError{File: name, Line: n, Msg: fmt.Sprintf("user %q already defined on line %d", user, prev.line)}
		}
		e.line = n
		pf.entries[user] = e
		if pf.dummy == nil {
			pf.dummy = &pwEntry{kind: e.kind, iterations: e.iterations, salt: make([]byte, len(e.salt))}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if pf.dummy == nil {
		pf.dummy = &pwEntry{kind: hashPBKDF2, iterations: DefaultIterations, salt: make([]byte, saltLen)}
	}
	return pf, nil
}

// checkUsername applies the rules of an MQTT User Name (MQTT 5.0 §3.1.3.5):
// a UTF-8 string [MQTT-1.5.4-1] without U+0000 [MQTT-1.5.4-2], at most 65535
// bytes. A username breaking them could never log in, so it is an error.
func checkUsername(u string) error {
	switch {
	case u == "":
		return errors.New("empty username")
	case len(u) > maxUsername:
		return fmt.Errorf("username longer than %d bytes", maxUsername)
	case !utf8.ValidString(u):
		return errors.New("username is not valid UTF-8")
	case strings.IndexByte(u, 0) >= 0:
		return errors.New("username contains U+0000")
	}
	return nil
}

// parseHash decodes the part of a password file line after the ':'.
func parseHash(s string) (*pwEntry, error) {
	switch {
	case s == "":
		return nil, errors.New("missing password hash")
	case strings.HasPrefix(s, "$argon2id$"), strings.HasPrefix(s, "$8$"):
		return nil, fmt.Errorf("%w: argon2id (mosquitto 2.1); set this password again with mosquitto_passwd -H sha512-pbkdf2", ErrUnsupportedHash)
	case s[0] != '$':
		return nil, errors.New("password is not hashed (plain text?); hash the file with mosquitto_passwd -U")
	}
	f := strings.Split(s[1:], "$")
	e := &pwEntry{}
	switch f[0] {
	case "6":
		if len(f) != 3 {
			return nil, errors.New(`malformed $6$ hash: want $6$<salt>$<hash>`)
		}
		e.kind = hashSHA512
		f = f[1:]
	case "7":
		if len(f) != 4 {
			return nil, errors.New(`malformed $7$ hash: want $7$<iterations>$<salt>$<hash>`)
		}
		e.kind = hashPBKDF2
		it, err := parseIterations(f[1])
		if err != nil {
			return nil, err
		}
		e.iterations = it
		f = f[2:]
	default:
		return nil, fmt.Errorf("%w: $%s$", ErrUnsupportedHash, f[0])
	}
	salt, err := base64.StdEncoding.DecodeString(f[0])
	if err != nil {
		return nil, fmt.Errorf("salt is not valid base64: %w", err)
	}
	if len(salt) != saltLen && len(salt) != longSaltLen {
		return nil, fmt.Errorf("salt is %d bytes, want %d or %d", len(salt), saltLen, longSaltLen)
	}
	hash, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return nil, fmt.Errorf("hash is not valid base64: %w", err)
	}
	if len(hash) != hashLen {
		return nil, fmt.Errorf("hash is %d bytes, want %d", len(hash), hashLen)
	}
	e.salt, e.hash = salt, hash
	return e, nil
}

// parseIterations reads a $7$ iteration count: decimal digits only, from 1
// to the largest C int mosquitto can hold.
func parseIterations(s string) (int, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("iteration count %q is not a decimal number", s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || n > math.MaxInt32 {
		return 0, fmt.Errorf("iteration count %q is out of range 1..%d", s, math.MaxInt32)
	}
	return int(n), nil
}

// Check reports whether password is the password of username. The hashes
// are compared in constant time, and an unknown username costs the same
// hashing as a known one. A nil *PasswordFile accepts nobody.
//
// MQTT passwords are binary data (MQTT 5.0 §3.1.3.6), so every byte of
// password counts.
func (f *PasswordFile) Check(username string, password []byte) bool {
	if f == nil {
		return false
	}
	e, known := f.entries[username]
	if !known {
		e = f.dummy
	}
	sum := e.derive(password)
	match := subtle.ConstantTimeCompare(sum, e.hash) == 1
	return known && match
}

// Has reports whether username has an entry in the file.
func (f *PasswordFile) Has(username string) bool {
	if f == nil {
		return false
	}
	_, ok := f.entries[username]
	return ok
}

// SameEntry reports whether username has the same password hash in f and
// in g (salt and iterations included), so that a password that passed
// f's Check passes g's. A reload uses it to keep the clients whose entry
// did not change without keeping their passwords.
func (f *PasswordFile) SameEntry(g *PasswordFile, username string) bool {
	if f == nil || g == nil {
		return false
	}
	e, ok := f.entries[username]
	o, ok2 := g.entries[username]
	return ok && ok2 && e.kind == o.kind && e.iterations == o.iterations &&
		subtle.ConstantTimeCompare(e.salt, o.salt) == 1 && subtle.ConstantTimeCompare(e.hash, o.hash) == 1
}

// Len returns the number of users in the file.
func (f *PasswordFile) Len() int {
	if f == nil {
		return 0
	}
	return len(f.entries)
}

// HashPassword returns a mosquitto "$7$" password hash of password:
// PBKDF2-HMAC-SHA512 with a random 12-byte salt, the given iteration count
// (0 means [DefaultIterations]) and a 64-byte key, in the form
//
//	$7$<iterations>$<base64 salt>$<base64 hash>
//
// A password file line is the username, ':' and this string; mosquitto 2.0
// and later read it as well as Outpost does.
func HashPassword(password []byte, iterations int) (string, error) {
	if iterations == 0 {
		iterations = DefaultIterations
	}
	if iterations < 1 || iterations > math.MaxInt32 {
		return "", fmt.Errorf("auth: iteration count %d is out of range 1..%d", iterations, math.MaxInt32)
	}
	e := &pwEntry{kind: hashPBKDF2, iterations: iterations, salt: make([]byte, saltLen)}
	if _, err := rand.Read(e.salt); err != nil {
		return "", fmt.Errorf("auth: salt: %w", err)
	}
	key, err := pbkdf2.Key(sha512.New, string(password), e.salt, iterations, hashLen)
	if err != nil {
		return "", fmt.Errorf("auth: pbkdf2: %w", err)
	}
	return fmt.Sprintf("$7$%d$%s$%s", iterations,
		base64.StdEncoding.EncodeToString(e.salt),
		base64.StdEncoding.EncodeToString(key)), nil
}
