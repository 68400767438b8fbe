package api_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
)

// rootCodes returns every E* constant declared in the root package's
// error.go, read from the source so that a new code cannot be forgotten.
func rootCodes(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../error.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	codes := make(map[string]string)
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !strings.HasPrefix(n.Name, "E") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				v, _ := strconv.Unquote(lit.Value)
				codes[n.Name] = v
			}
		}
	}
	if len(codes) < 13 {
		t.Fatalf("found only %d E* codes in error.go: %v", len(codes), codes)
	}
	return codes
}

func TestEveryCodeInTable(t *testing.T) {
	for name, code := range rootCodes(t) {
		if !api.KnownCode(code) {
			t.Errorf("filehub.%s (%q) is not in api.Errors", name, code)
		}
	}
	if len(api.Errors) != len(rootCodes(t)) {
		t.Errorf("api.Errors has %d rows, error.go %d codes", len(api.Errors), len(rootCodes(t)))
	}
}

func TestTableBothWays(t *testing.T) {
	seen := make(map[int]string)
	for _, e := range api.Errors {
		if prev, dup := seen[e.Status]; dup {
			t.Errorf("status %d is used by %q and %q: the way back is ambiguous", e.Status, prev, e.Code)
		}
		seen[e.Status] = e.Code
		if got := api.StatusCode(e.Code); got != e.Status {
			t.Errorf("StatusCode(%q) = %d, want %d", e.Code, got, e.Status)
		}
		if got := api.CodeForStatus(e.Status); got != e.Code {
			t.Errorf("CodeForStatus(%d) = %q, want %q", e.Status, got, e.Code)
		}
		if want := http.StatusText(e.Status); e.Title != want && (want != "" || e.Title == "") {
			// A status net/http has no text for (tus's 460) needs a
			// title of its own.
			t.Errorf("%q: title %q, want %q", e.Code, e.Title, want)
		}
	}
	for _, tc := range []struct {
		status int
		code   string
	}{
		{http.StatusGone, filehub.EGONE},
		{http.StatusBadGateway, filehub.EUNAVAILABLE},
		{http.StatusGatewayTimeout, filehub.EUNAVAILABLE},
		{http.StatusTeapot, filehub.EINVALID},
		{http.StatusNotImplemented, filehub.EINTERNAL},
		{200, filehub.EINTERNAL},
	} {
		if got := api.CodeForStatus(tc.status); got != tc.code {
			t.Errorf("CodeForStatus(%d) = %q, want %q", tc.status, got, tc.code)
		}
	}
	if got := api.StatusCode("no_such_code"); got != http.StatusInternalServerError {
		t.Errorf("StatusCode(unknown) = %d, want 500", got)
	}
}

func TestProblem(t *testing.T) {
	p := api.NewProblem(filehub.ENOTFOUND, "no such file")
	b, _ := json.Marshal(p)
	want := `{"type":"urn:filehub:error:not_found","title":"Not Found","status":404,"detail":"no such file","code":"not_found"}`
	if string(b) != want {
		t.Errorf("problem = %s, want %s", b, want)
	}
	p = api.NewProblemStatus(http.StatusUpgradeRequired, filehub.EINVALID, "x")
	if p.Title != "Upgrade Required" || p.Status != 426 || p.Code != filehub.EINVALID {
		t.Errorf("NewProblemStatus = %+v", p)
	}
	// Back to an error: a known code wins over the status; an unknown
	// one falls back to the status.
	if e := (&api.Problem{Code: filehub.ECONFLICT, Detail: "d"}).Err(500); e.Code != filehub.ECONFLICT || e.Message != "d" {
		t.Errorf("Err = %+v", e)
	}
	if e := (&api.Problem{Code: "weird"}).Err(503); e.Code != filehub.EUNAVAILABLE {
		t.Errorf("Err of unknown code = %+v", e)
	}
}
