package paging_test

import (
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/internal/paging"
)

func TestLimit(t *testing.T) {
	for _, tt := range []struct{ in, want int }{{0, paging.DefaultLimit}, {1, 1}, {1000, 1000}, {5000, paging.MaxLimit}} {
		if got, err := paging.Limit(tt.in); err != nil || got != tt.want {
			t.Errorf("Limit(%d) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	if _, err := paging.Limit(-1); filehub.ErrorCode(err) != filehub.EINVALID {
		t.Errorf("Limit(-1) = %v, want EINVALID", err)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, seq := range []int64{1, 42, 1 << 40} {
		got, err := paging.DecodeCursor(paging.EncodeCursor(seq))
		if err != nil || got != seq {
			t.Errorf("round trip of %d: %d, %v", seq, got, err)
		}
	}
	if got, err := paging.DecodeCursor(""); err != nil || got != 0 {
		t.Errorf(`DecodeCursor("") = %d, %v`, got, err)
	}
	for _, bad := range []string{"!!", "eA", paging.EncodeCursor(0), paging.EncodeCursor(-5)} {
		if _, err := paging.DecodeCursor(bad); filehub.ErrorCode(err) != filehub.EINVALID {
			t.Errorf("DecodeCursor(%q) = %v, want EINVALID", bad, err)
		}
	}
}
