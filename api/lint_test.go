package api_test

import (
	"testing"
	"time"

	"github.com/filehub/filehub/internal/nodetest"
)

// TestOpenAPILint lints the document with Redocly's CLI (pinned in e2e/),
// with every recommended rule as an error (e2e/redocly.yaml); the few
// justified exceptions are listed by location in
// e2e/.redocly.lint-ignore.yaml. A problem makes redocly exit non-zero,
// which fails the test.
func TestOpenAPILint(t *testing.T) {
	nodetest.Run(t, 3*time.Minute, []string{"REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true"},
		"node_modules/@redocly/cli/bin/cli.js", "lint", "--config", "redocly.yaml", "--format", "stylish", "../api/openapi.yaml")
}
