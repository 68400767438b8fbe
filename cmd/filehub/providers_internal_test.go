package main

import (
	"strings"
	"testing"

	"github.com/filehub/filehub/openai"
)

func TestParseProviders(t *testing.T) {
	for _, tc := range []struct {
		name    string
		environ []string
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProviders(tc.environ)
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
