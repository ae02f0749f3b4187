// Package auth reads the password files and ACL files of mosquitto, so that
// users moving a broker to Outpost keep the files they already have.
//
// A password file is what mosquitto_passwd writes: one "username:hash" line
// per user, where hash is a PBKDF2-HMAC-SHA512 "$7$" entry (mosquitto 2.x) or
// a salted SHA-512 "$6$" entry (mosquitto 1.x). See [PasswordFile].
//
// An ACL file uses mosquitto's acl_file syntax: "topic", "user" and
// "pattern" lines. See [ParseACL] for the syntax and [ACL.Check] for the
// semantics, which follow mosquitto 2.x rule for rule.
//
// Both parsers are strict where mosquitto would silently drop a line: any
// line that cannot be understood is an error that names the file, the line
// number and the problem ([ParseError]), so a typo never turns into a
// missing user or a missing rule at run time.
//
// Values returned by the parsers are read-only and safe for concurrent use.
package auth
