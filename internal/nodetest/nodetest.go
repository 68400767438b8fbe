// Package nodetest runs the real ecosystem clients kept in the repository's
// e2e/ directory (tus-js-client, the MCP TypeScript SDK, Playwright,
// Redocly, openapi-typescript) from Go tests, with the machine's Node.
//
// On a laptop without Node, or without `npm ci` run in e2e/, the tests that
// need them skip with a message saying what to install. Under CI (the CI
// environment variable set to anything but "" or "false") they fail instead:
// CI must run them, and .ci/run installs what they need.
package nodetest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI, where a missing tool is a
// failure rather than a reason to skip.
func InCI() bool {
	v := strings.TrimSpace(strings.ToLower(os.Getenv("CI")))
	return v != "" && v != "false" && v != "0"
}

// Dir returns the absolute path of the repository's e2e/ directory. It is
// found from this source file's location, so it works from any package's
// test binary.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "e2e")
}

// Require returns the path of the node binary and e2e/, or skips (fails in
// CI) with a message when Node or the installed e2e packages are missing.
func Require(tb testing.TB) (node, dir string) {
	tb.Helper()
	missing := func(format string, args ...any) {
		tb.Helper()
		msg := fmt.Sprintf(format, args...)
		if InCI() {
			tb.Fatalf("%s (CI must run the Node client tests; .ci/run installs them)", msg)
		}
		tb.Skipf("%s: skipping the real-client test", msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed (Node 20 runs the e2e clients)")
		return "", ""
	}
	dir = Dir()
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		missing("e2e/node_modules is missing: run `npm ci` in %s", dir)
		return "", ""
	}
	return node, dir
}

// Run runs `node script args...` in e2e/ with env added to the test's
// environment, and returns its standard output. The run is bounded by
// timeout; a non-zero exit fails the test with the script's stderr.
func Run(tb testing.TB, timeout time.Duration, env []string, script string, args ...string) []byte {
	tb.Helper()
	node, dir := Require(tb)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("node %s: %v\nstderr:\n%s\nstdout:\n%s", script, err, stderr.String(), stdout.String())
	}
	return stdout.Bytes()
}
