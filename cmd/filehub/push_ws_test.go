package main_test

import (
	"context"
	"strings"
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/client"
	"github.com/filehub/filehub/internal/fakeprovider"
	"github.com/filehub/filehub/wsclient"
	"github.com/filehub/filehub/wsserver"
)

// TestPushOverWebSocket pushes through the providers.push RPC of the real
// daemon, pointed at the files API stand-in: the first push uploads, the
// second reuses the same provider file, and errors keep their codes.
func TestPushOverWebSocket(t *testing.T) {
	fp := fakeprovider.New(t, "sk-provider")
	srv := MustRunMain(t, t.TempDir(), map[string]string{
		"FILEHUB_BOOTSTRAP_KEY":          testKey,
		"FILEHUB_PROVIDER_TEST_API_KEY":  "sk-provider",
		"FILEHUB_PROVIDER_TEST_BASE_URL": fp.URL,
		"FILEHUB_PROVIDER_TEST_PURPOSE":  "file-extract",
	}, nil)
	ctx := context.Background()
	up, err := client.New(srv.URL, testKey).Upload(ctx, "notes.txt", strings.NewReader("meeting notes"), -1)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := wsclient.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/ws", wsclient.Options{Key: testKey, IgnoreMessages: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()

	params := map[string]string{"id": up.ID, "provider": "test"}
	var first, second api.PushResult
	if err := ws.Call(ctx, wsserver.MethodProvidersPush, params, &first); err != nil {
		t.Fatal(err)
	}
	held := fp.Files()
	if len(held) != 1 || held[0].Filename != "notes.txt" {
		t.Fatalf("the provider holds %+v", held)
	}
	if first != (api.PushResult{Provider: "test", ProviderFileID: held[0].ID}) {
		t.Errorf("first push = %+v, want an upload as %s", first, held[0].ID)
	}
	if err := ws.Call(ctx, wsserver.MethodProvidersPush, params, &second); err != nil {
		t.Fatal(err)
	}
	if !second.Reused || second.ProviderFileID != held[0].ID || fp.Uploads() != 1 {
		t.Errorf("second push = %+v after %d uploads, want the same file reused", second, fp.Uploads())
	}

	err = ws.Call(ctx, wsserver.MethodProvidersPush, map[string]string{"id": up.ID, "provider": "kimi"}, nil)
	if filehub.ErrorCode(err) != filehub.ENOTFOUND || !strings.Contains(err.Error(), `unknown provider "kimi"`) {
		t.Errorf("unknown provider: %v, want not_found naming it", err)
	}
	err = ws.Call(ctx, wsserver.MethodProvidersPush, map[string]string{"id": "f_missing", "provider": "test"}, nil)
	if filehub.ErrorCode(err) != filehub.ENOTFOUND {
		t.Errorf("unknown file: %v, want not_found", err)
	}
}
