package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/client"
)

func TestDescribe(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"plain", errors.New("open x: no such file"), "open x: no such file"},
		{"filehub error", fmt.Errorf("get f_1: %w", filehub.Errorf(filehub.ENOTFOUND, "file f_1 not found")), "get f_1: file f_1 not found"},
		{"with request id", fmt.Errorf("get f_1: %w", &filehub.Error{Code: filehub.ENOTFOUND, Message: "file f_1 not found",
			Err: &client.RequestError{StatusCode: 404, RequestID: "req_1"}}), "get f_1: file f_1 not found (request req_1)"},
		{"with cause", filehub.WrapError(filehub.EUNAVAILABLE, "cannot reach the server", errors.New("connection refused")),
			"cannot reach the server: connection refused"},
		{"no message", &filehub.Error{Code: filehub.EINTERNAL}, "internal"},
		{"multi-line", errors.New("a\nb"), "a b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describe(tt.err); got != tt.want {
				t.Errorf("describe = %q, want %q", got, tt.want)
			}
		})
	}
}
