package wsproto

// DecodeFast exposes the single-pass decoder to the external tests, which
// compare it with encoding/json.
func DecodeFast(line []byte) (*Frame, bool) {
	f := new(Frame)
	if !decodeFast(line, f) {
		return nil, false
	}
	return f, true
}
