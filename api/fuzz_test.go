package api_test

import (
	"encoding/json"
	"testing"

	"github.com/filehub/filehub/api"
)

// FuzzProblem decodes arbitrary bytes as a server's problem document, as
// both Go clients do with the body of a failed response: the error they
// make of it always carries a code from the table.
func FuzzProblem(f *testing.F) {
	f.Add([]byte(`{"type":"urn:filehub:error:not_found","title":"Not Found","status":404,"detail":"x","code":"not_found"}`), 404)
	f.Add([]byte(`{"code":"made_up"}`), 502)
	f.Add([]byte(`<html>bad gateway</html>`), 502)
	f.Add([]byte(`{"code":7}`), 200)
	f.Fuzz(func(t *testing.T, body []byte, status int) {
		var p api.Problem
		_ = json.Unmarshal(body, &p)
		e := p.Err(status)
		if !api.KnownCode(e.Code) {
			t.Fatalf("Err(%d) of %q = code %q, not in the table", status, body, e.Code)
		}
	})
}
