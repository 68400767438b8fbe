package ui_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// TestAuditActionSuggestions: the audit filter's suggestions (the datalist
// of the action field) are exactly the audit actions the root package
// declares, so a new action is offered and a renamed one is not.
func TestAuditActionSuggestions(t *testing.T) {
	decl := regexp.MustCompile(`(?m)^\s*(?:const\s+)?Audit[A-Za-z]+\s*=\s*"([a-z_.]+)"`)
	var want []string
	sources, err := filepath.Glob(filepath.Join("..", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range sources {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range decl.FindAllStringSubmatch(string(b), -1) {
			want = append(want, m[1])
		}
	}
	if len(want) < 10 {
		t.Fatalf("found %d audit actions in the root package: the extraction is broken", len(want))
	}
	index, err := os.ReadFile(filepath.Join("assets", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	list := regexp.MustCompile(`(?s)<datalist id="audit-actions">(.*?)</datalist>`).FindSubmatch(index)
	if list == nil {
		t.Fatal("index.html has no datalist audit-actions")
	}
	var got []string
	for _, m := range regexp.MustCompile(`<option value="([^"]*)">`).FindAllSubmatch(list[1], -1) {
		got = append(got, string(m[1]))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("the audit filter suggests %v, want the declared actions %v", got, want)
	}
}
