package files_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/files"
)

func TestCheckDeclaredType(t *testing.T) {
	e := newEnv(t, files.Config{}, nil)
	for _, tc := range []struct {
		declared string
		refused  bool
	}{
		{"", false},
		{"application/pdf", false},
		{"text/plain; charset=utf-8", false},
		{"application/x-unknown-to-the-detector", false},
		{"application/x-elf", true},
		{"application/x-sharedlib", true}, // a child of x-elf
		{"application/vnd.microsoft.portable-executable", true},
		{"APPLICATION/X-ELF", true},
		{"application/x-msdownload", true}, // what browsers call a .exe
		{"application/x-executable", true},
	} {
		err := e.svc.CheckDeclaredType(tc.declared)
		if got := filehub.ErrorCode(err) == filehub.EUNSUPPORTED; got != tc.refused {
			t.Errorf("CheckDeclaredType(%q) = %v, want refused=%v", tc.declared, err, tc.refused)
		}
	}
	// With an allow list, a declaration is judged by the deny list only:
	// the sniffed content decides.
	allow := newEnv(t, files.Config{AllowTypes: []string{"image/*"}}, nil)
	if err := allow.svc.CheckDeclaredType("application/pdf"); err != nil {
		t.Errorf("with an allow list, a declared application/pdf = %v, want nil", err)
	}
	if err := allow.svc.CheckDeclaredType("application/x-elf"); filehub.ErrorCode(err) != filehub.EUNSUPPORTED {
		t.Errorf("with an allow list, a declared application/x-elf = %v, want EUNSUPPORTED", err)
	}
}

func TestCheckContent(t *testing.T) {
	e := newEnv(t, files.Config{}, nil)
	if ct, err := e.svc.CheckContent([]byte("%PDF-1.7\n")); err != nil || ct != "application/pdf" {
		t.Errorf("CheckContent(pdf) = %q, %v", ct, err)
	}
	if _, err := e.svc.CheckContent([]byte("\x7fELF\x02\x01\x01\x00")); filehub.ErrorCode(err) != filehub.EUNSUPPORTED {
		t.Errorf("CheckContent(ELF) = %v, want EUNSUPPORTED", err)
	}
}

// TestCommitStaged: content staged and hashed elsewhere becomes a file
// through the same path as Upload: deduplicated, with one file.created
// event, under the caller's file ID.
func TestCommitStaged(t *testing.T) {
	e := newEnv(t, files.Config{}, nil)
	ctx := t.Context()
	data := []byte(strings.Repeat("staged elsewhere\n", 100))
	stage := func() filehub.StagedBlob {
		st, err := e.blobs.Stage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Write(data); err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := stage()
	up, err := e.svc.CommitStaged(ctx, st, &filehub.File{ID: "f_fixed", Name: "../a.txt", Size: int64(len(data)),
		SHA256: sum(data), ContentType: "text/plain; charset=utf-8", OwnerKeyID: "k_1"})
	st.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if up.ID != "f_fixed" || up.Deduplicated || up.Name != "a.txt" || up.CreatedAt.IsZero() {
		t.Fatalf("CommitStaged = %+v", up)
	}
	if got := e.download(t, "f_fixed"); !bytes.Equal(got, data) {
		t.Fatalf("downloaded %d bytes, want %d", len(got), len(data))
	}
	st = stage()
	up, err = e.svc.CommitStaged(ctx, st, &filehub.File{ID: "f_second", Name: "b.txt", Size: int64(len(data)),
		SHA256: sum(data), ContentType: "text/plain", OwnerKeyID: "k_1"})
	st.Close(ctx)
	if err != nil || !up.Deduplicated {
		t.Fatalf("second CommitStaged of the same content = %+v, %v; want deduplicated", up, err)
	}
	st = stage()
	_, err = e.svc.CommitStaged(ctx, st, &filehub.File{ID: "f_fixed", Name: "c.txt", Size: int64(len(data)),
		SHA256: sum(data), ContentType: "text/plain", OwnerKeyID: "k_1"})
	st.Close(ctx)
	wantCode(t, err, filehub.ECONFLICT)
	events, err := e.meta.ListEvents(ctx, 0, 100)
	if err != nil || len(events) != 2 {
		t.Fatalf("events = %d, %v; want one file.created per committed file", len(events), err)
	}
	e.assertDirEmpty(t, "tmp")
}
