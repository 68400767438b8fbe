package api_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientDeps keeps the Go clients light: a program that talks to
// filehub must not link the server's metrics, content sniffing, databases
// or cloud SDK. It runs `go list -deps` on the client packages.
func TestClientDeps(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", "github.com/filehub/filehub/client", "github.com/filehub/filehub/wsclient", "github.com/filehub/filehub/api").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/prometheus/",
		"github.com/gabriel-vasile/mimetype",
		"modernc.org/",
		"github.com/jackc/",
		"github.com/aws/",
		// Server packages of this module.
		"github.com/filehub/filehub/cleanup",
		"github.com/filehub/filehub/files",
		"github.com/filehub/filehub/providers",
		"github.com/filehub/filehub/httpapi",
		"github.com/filehub/filehub/wsserver",
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) < 10 {
		t.Fatalf("go list printed too little to be the dependency list:\n%s", out)
	}
	for _, p := range pkgs {
		for _, f := range forbidden {
			if strings.HasPrefix(p, f) {
				t.Errorf("the clients depend on %s", p)
			}
		}
	}
}

// TestAPIImportsOnlyRoot keeps package api importable by anything: it may
// use the standard library and the root package, nothing else.
func TestAPIImportsOnlyRoot(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "github.com/filehub/filehub/api").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/filehub/filehub" && p != "github.com/filehub/filehub/api" {
			t.Errorf("package api depends on %s", p)
		}
	}
}
