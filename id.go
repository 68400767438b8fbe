package filehub

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"strings"
)

// idEncoding is lowercase base32 without padding: URL-safe, case-insensitive
// safe (for file systems and humans), and free of look-alike punctuation.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a random opaque identifier with the given prefix, such as
// "f_" for files or "k_" for keys. 120 random bits make collisions and
// guessing impractical.
func NewID(prefix string) string {
	var b [15]byte
	rand.Read(b[:]) // never fails (crypto/rand panics on failure since Go 1.24)
	return prefix + idEncoding.EncodeToString(b[:])
}

// APIKeyPrefix starts every API key secret so that leaked keys are easy to
// recognise (and to scan for) in logs and repositories.
const APIKeyPrefix = "fhk_"

// NewAPIKeySecret returns a new random API key secret (256 bits).
func NewAPIKeySecret() string {
	var b [32]byte
	rand.Read(b[:])
	return APIKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// HashAPIKey returns the hash under which a key secret is stored. Secrets are
// 256-bit random values, so a fast hash is enough: there is nothing to
// brute-force that a slow password hash would protect.
func HashAPIKey(secret string) []byte {
	h := sha256.Sum256([]byte(strings.TrimSpace(secret)))
	return h[:]
}

// EqualHashes compares two key hashes in constant time.
func EqualHashes(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
