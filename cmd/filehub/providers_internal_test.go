package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/filehub/filehub/openai"
)

func TestParseProviders(t *testing.T) {
	for _, tc := range []struct {
		name    string
		environ []string
		file    map[string]map[string]string // as readProviderFile returns
		want    []openai.Config
		wantErr string
	}{
		{name: "none", environ: []string{"PATH=/bin", "FILEHUB_KEY=x"}},
		{
			name:    "kimi preset",
			environ: []string{"FILEHUB_PROVIDER_KIMI_API_KEY=sk-kimi"},
			want: []openai.Config{{Name: "kimi", APIKey: "sk-kimi", BaseURL: "https://api.moonshot.cn/v1",
				Purpose: "file-extract", MaxFileSize: 100 << 20, FileQuota: 1000}},
		},
		{
			name: "overrides, sorted",
			environ: []string{
				"FILEHUB_PROVIDER_OPENAI_API_KEY=sk-o",
				"FILEHUB_PROVIDER_GLM_API_KEY=sk-g",
				"FILEHUB_PROVIDER_GLM_BASE_URL=https://api.z.ai/api/paas/v4",
				"FILEHUB_PROVIDER_GLM_PURPOSE=file-extract",
				"FILEHUB_PROVIDER_GLM_MAX_FILE_SIZE=20MiB",
				"FILEHUB_PROVIDER_GLM_FILE_QUOTA=50",
			},
			want: []openai.Config{
				{Name: "glm", APIKey: "sk-g", BaseURL: "https://api.z.ai/api/paas/v4", Purpose: "file-extract", MaxFileSize: 20 << 20, FileQuota: 50},
				{Name: "openai", APIKey: "sk-o", BaseURL: "https://api.openai.com/v1", Purpose: "assistants", MaxFileSize: 512 << 20},
			},
		},
		{
			name:    "custom with underscores",
			environ: []string{"FILEHUB_PROVIDER_MY_LAB_API_KEY=k", "FILEHUB_PROVIDER_MY_LAB_BASE_URL=http://127.0.0.1:9/v1", "FILEHUB_PROVIDER_MY_LAB_PURPOSE=file"},
			want:    []openai.Config{{Name: "my_lab", APIKey: "k", BaseURL: "http://127.0.0.1:9/v1", Purpose: "file"}},
		},
		{name: "no key", environ: []string{"FILEHUB_PROVIDER_KIMI_BASE_URL=https://x/v1"}, wantErr: "FILEHUB_PROVIDER_KIMI_API_KEY is not set"},
		{name: "empty key", environ: []string{"FILEHUB_PROVIDER_KIMI_API_KEY="}, wantErr: "FILEHUB_PROVIDER_KIMI_API_KEY is not set"},
		{name: "typo", environ: []string{"FILEHUB_PROVIDER_KIMI_APIKEY=k"}, wantErr: "unknown provider setting"},
		{name: "custom without base", environ: []string{"FILEHUB_PROVIDER_TEST_API_KEY=k"}, wantErr: "FILEHUB_PROVIDER_TEST_BASE_URL"},
		{name: "custom without purpose", environ: []string{"FILEHUB_PROVIDER_TEST_API_KEY=k", "FILEHUB_PROVIDER_TEST_BASE_URL=http://h/v1"}, wantErr: "FILEHUB_PROVIDER_TEST_PURPOSE"},
		{name: "bad size", environ: []string{"FILEHUB_PROVIDER_KIMI_API_KEY=k", "FILEHUB_PROVIDER_KIMI_MAX_FILE_SIZE=huge"}, wantErr: "FILEHUB_PROVIDER_KIMI_MAX_FILE_SIZE"},
		{name: "bad quota", environ: []string{"FILEHUB_PROVIDER_KIMI_API_KEY=k", "FILEHUB_PROVIDER_KIMI_FILE_QUOTA=-1"}, wantErr: "FILEHUB_PROVIDER_KIMI_FILE_QUOTA"},
		{name: "bad name", environ: []string{"FILEHUB_PROVIDER__API_KEY=k"}, wantErr: "invalid provider name"},
		{
			name: "file only",
			file: map[string]map[string]string{"kimi": {"API_KEY": "sk-file", "FILE_QUOTA": "500"}},
			want: []openai.Config{{Name: "kimi", APIKey: "sk-file", BaseURL: "https://api.moonshot.cn/v1",
				Purpose: "file-extract", MaxFileSize: 100 << 20, FileQuota: 500}},
		},
		{
			// Each field separately: env > file > preset.
			name: "env over file over preset",
			environ: []string{
				"FILEHUB_PROVIDER_KIMI_API_KEY=sk-env",
				"FILEHUB_PROVIDER_KIMI_PURPOSE=", // empty: unset, the file's value stays
				"FILEHUB_PROVIDER_KIMI_MAX_FILE_SIZE=10MiB",
			},
			file: map[string]map[string]string{"kimi": {"API_KEY": "sk-file", "BASE_URL": "http://file/v1", "PURPOSE": "assistants", "MAX_FILE_SIZE": "1MiB"}},
			want: []openai.Config{{Name: "kimi", APIKey: "sk-env", BaseURL: "http://file/v1",
				Purpose: "assistants", MaxFileSize: 10 << 20, FileQuota: 1000}},
		},
		{
			name:    "key in the file, settings in the environment",
			environ: []string{"FILEHUB_PROVIDER_LAB_BASE_URL=http://lab/v1"},
			file:    map[string]map[string]string{"lab": {"API_KEY": "k", "PURPOSE": "file"}},
			want:    []openai.Config{{Name: "lab", APIKey: "k", BaseURL: "http://lab/v1", Purpose: "file"}},
		},
		{name: "file without key", file: map[string]map[string]string{"glm": {"PURPOSE": "file"}}, wantErr: "api_key in [providers.glm]"},
		{name: "bad quota in file", file: map[string]map[string]string{"kimi": {"API_KEY": "k", "FILE_QUOTA": "many"}}, wantErr: "[providers.kimi] file_quota"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProviders(tc.environ, tc.file)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !isUsageError(err) {
					t.Fatalf("parseProviders = %+v, %v; want a usage error mentioning %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("parseProviders = %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("provider %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestReadProviderFile(t *testing.T) {
	write := func(t *testing.T, text string) string {
		t.Helper()
		path := filepath.Join(t.TempDir(), "filehub.toml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	got, err := readProviderFile(write(t, `
listen = "127.0.0.1:0"

[providers.kimi]
api_key = "sk-kimi"
max_file_size = "50MB"
file_quota = 800

[providers.my_lab]
api_key = "k"
base_url = "http://lab/v1"
purpose = "file"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		"kimi":   {"API_KEY": "sk-kimi", "MAX_FILE_SIZE": "50MB", "FILE_QUOTA": "800"},
		"my_lab": {"API_KEY": "k", "BASE_URL": "http://lab/v1", "PURPOSE": "file"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("readProviderFile = %v, want %v", got, want)
	}
	if got, err := readProviderFile(""); got != nil || err != nil {
		t.Errorf("no file: %v, %v", got, err)
	}

	for _, tc := range []struct{ name, text, wantErr string }{
		{"unknown key", "[providers.kimi]\napi_key = \"k\"\napikey = \"k\"\n", `[providers.kimi]: unknown key "apikey"`},
		{"bad name", "[providers.Kimi]\napi_key = \"k\"\n", "invalid provider name"},
		{"not a table", "providers = \"kimi\"\n", "must be a table"},
		{"bad value", "[providers.kimi]\napi_key = [1]\n", `key "api_key"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readProviderFile(write(t, tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !isUsageError(err) {
				t.Errorf("readProviderFile = %v, want a usage error mentioning %q", err, tc.wantErr)
			}
		})
	}
}

// TestServeReadsProviderFile runs "filehub serve" on a config file with
// provider tables: the flags in it still apply, the tables reach the
// server, and a misspelt provider key stops it with exit code 2.
func TestServeReadsProviderFile(t *testing.T) {
	path := writeFile(t, "filehub.toml", "listen = \"127.0.0.1:7000\"\n\n[providers.kimi]\napi_key = \"sk-file\"\nfile_quota = 900\n")
	cfg, code, stderr := parseServe(t, nil, "--config", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if cfg.Listen != "127.0.0.1:7000" || cfg.Providers["kimi"]["API_KEY"] != "sk-file" || cfg.Providers["kimi"]["FILE_QUOTA"] != "900" {
		t.Errorf("serve got listen %q, providers %v", cfg.Listen, cfg.Providers)
	}
	// The file named by FILEHUB_CONFIG, too.
	cfg, code, stderr = parseServe(t, map[string]string{"FILEHUB_CONFIG": path})
	if code != 0 || cfg.Providers["kimi"]["API_KEY"] != "sk-file" {
		t.Errorf("FILEHUB_CONFIG: exit %d (%s), providers %v", code, stderr, cfg.Providers)
	}

	bad := writeFile(t, "bad.toml", "[providers.kimi]\napi_key = \"k\"\nquota = 5\n")
	_, code, stderr = parseServe(t, nil, "--config", bad)
	if code != ExitUsage || !strings.Contains(stderr, `unknown key "quota"`) {
		t.Errorf("misspelt key: exit %d, stderr %q", code, stderr)
	}
}
