package files

import (
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameBytes is the longest sanitized file name, in bytes: the limit of
// most file systems, so a name can always be used to save a download.
const MaxNameBytes = 255

// fallbackName replaces names that sanitize to nothing.
const fallbackName = "file"

// SanitizeName turns a client-supplied file name into one that is safe to
// store, list and send back in a Content-Disposition header. The result is
// never used to build a storage path; sanitizing protects the people and
// programs that later save the file under this name.
//
// It keeps only the last path element (of both / and \ separated paths),
// replaces control characters, bidirectional overrides and other invisible
// format characters, characters Windows forbids, and invalid UTF-8 with "_",
// trims leading/trailing spaces and dots, prefixes Windows reserved device
// names (CON, NUL, COM1, …) with "_", and truncates to MaxNameBytes keeping
// the extension. The result is valid UTF-8, never empty, "." or "..", and
// SanitizeName(SanitizeName(s)) == SanitizeName(s).
func SanitizeName(name string) string {
	// Last path element, for both separators. path.Base is not used on its
	// own because it does not know about backslashes.
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}

	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); {
		r, size := utf8.DecodeRuneInString(name[i:])
		i += size
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteByte('_')
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r), r == '\u2028', r == '\u2029':
			// Cf holds the bidi overrides (U+202A–U+202E, U+2066–U+2069),
			// zero-width characters and the BOM: all invisible, all used to
			// disguise names ("invoice\u202Efdp.exe").
			b.WriteByte('_')
		case strings.ContainsRune(`<>:"|?*`, r):
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	s := strings.Trim(b.String(), " .")
	s = truncateName(s)
	// Truncation may expose trailing dots or spaces again.
	s = strings.Trim(s, " .")
	if s == "" {
		return fallbackName
	}
	if isWindowsReserved(s) {
		s = truncateName("_" + s)
	}
	return s
}

// truncateName cuts s to MaxNameBytes on a rune boundary, keeping a short
// extension so that the file still opens with the right program.
func truncateName(s string) string {
	if len(s) <= MaxNameBytes {
		return s
	}
	ext := path.Ext(s)
	if len(ext) > 16 || len(ext) == len(s) {
		ext = ""
	}
	stem := s[:len(s)-len(ext)]
	limit := MaxNameBytes - len(ext)
	for limit > 0 && !utf8.RuneStart(stem[limit]) {
		limit--
	}
	return stem[:limit] + ext
}

// isWindowsReserved reports whether s is a DOS device name, alone or with an
// extension ("nul.txt" is as dangerous as "NUL" on Windows).
func isWindowsReserved(s string) bool {
	stem := s
	if i := strings.IndexByte(stem, '.'); i >= 0 {
		stem = stem[:i]
	}
	stem = strings.ToUpper(strings.TrimRight(stem, " "))
	switch stem {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	if len(stem) == 4 && (strings.HasPrefix(stem, "COM") || strings.HasPrefix(stem, "LPT")) {
		c := stem[3]
		return c >= '0' && c <= '9'
	}
	// COM¹ etc. are reserved too.
	if len(stem) > 3 && (strings.HasPrefix(stem, "COM") || strings.HasPrefix(stem, "LPT")) {
		switch stem[3:] {
		case "¹", "²", "³":
			return true
		}
	}
	return false
}
