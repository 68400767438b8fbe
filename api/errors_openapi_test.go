package api_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/internal/apitest"
)

// rootErrorCodes reads the error codes declared in the root package's
// error.go (the E* constants), so that a new code cannot be missed.
func rootErrorCodes(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../error.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if len(name.Name) < 2 || name.Name[0] != 'E' || strings.ToUpper(name.Name) != name.Name || i >= len(vs.Values) {
				continue
			}
			if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				s, _ := strconv.Unquote(lit.Value)
				codes = append(codes, s)
			}
		}
		return true
	})
	if len(codes) < 10 {
		t.Fatalf("found only %d error codes in error.go", len(codes))
	}
	slices.Sort(codes)
	return codes
}

// TestOpenAPIErrorCodes checks the document's error codes against the
// root package's and the HTTP status table: the ErrorCode enum lists
// exactly the codes of error.go, and each per-status problem schema pins
// a code to the status the server sends it with.
func TestOpenAPIErrorCodes(t *testing.T) {
	doc := apitest.Load(t).Doc
	want := rootErrorCodes(t)
	var enum []string
	for _, v := range doc.Components.Schemas["ErrorCode"].Value.Enum {
		enum = append(enum, v.(string))
	}
	slices.Sort(enum)
	if !slices.Equal(enum, want) {
		t.Errorf("ErrorCode enum = %v, want the codes of error.go %v", enum, want)
	}
	pinned := map[string]bool{}
	for name, ref := range doc.Components.Schemas {
		if !strings.HasSuffix(name, "Problem") || len(ref.Value.AllOf) != 2 {
			continue
		}
		props := ref.Value.AllOf[1].Value.Properties
		code, _ := props["code"].Value.Const.(string)
		if code == "" {
			t.Errorf("%s does not pin a code", name)
			continue
		}
		pinned[code] = true
		st := props["status"]
		if st == nil {
			continue // invalid: 400, 405 and 426
		}
		status, _ := st.Value.Const.(float64)
		if int(status) != api.StatusCode(code) {
			t.Errorf("%s: status %v for code %s, the server sends %d", name, st.Value.Const, code, api.StatusCode(code))
		}
	}
	for _, code := range want {
		if !pinned[code] {
			t.Errorf("no problem schema pins code %s", code)
		}
	}
}

// TestOpenAPICleanupKinds checks the document's cleanup kinds against the
// root package's one list of them.
func TestOpenAPICleanupKinds(t *testing.T) {
	var enum []string
	for _, v := range apitest.Load(t).Doc.Components.Schemas["CleanupKind"].Value.Enum {
		enum = append(enum, v.(string))
	}
	if !slices.Equal(enum, filehub.CleanupKinds) {
		t.Errorf("CleanupKind enum = %v, want filehub.CleanupKinds %v", enum, filehub.CleanupKinds)
	}
}
