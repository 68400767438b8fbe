package cleanup_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/filehub/filehub/api"
	"github.com/filehub/filehub/cleanup"
)

// TestReportWire checks that the wire report encodes exactly like the
// service's report, with every field set, so that a field added to one and
// not the other fails here.
func TestReportWire(t *testing.T) {
	r := &cleanup.Report{}
	fill(t, reflect.ValueOf(r).Elem())
	want, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(cleanup.ReportWire(r))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("wire report differs:\n got %s\nwant %s", got, want)
	}
	var back api.CleanupReport
	if err := json.Unmarshal(want, &back); err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(&back)
	if !bytes.Equal(again, want) {
		t.Errorf("decoding into api.CleanupReport loses fields:\n got %s\nwant %s", again, want)
	}
}

// fill sets every field of v to a non-zero value.
func fill(t *testing.T, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(t, v.Field(i))
			}
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(t, v.Index(0))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k := reflect.New(v.Type().Key()).Elem()
		fill(t, k)
		e := reflect.New(v.Type().Elem()).Elem()
		fill(t, e)
		v.SetMapIndex(k, e)
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(7)
	case reflect.Float64:
		v.SetFloat(0.5)
	default:
		t.Fatalf("fill: unhandled kind %s", v.Kind())
	}
}

func TestRunOptionsFrom(t *testing.T) {
	opts, err := cleanup.RunOptionsFrom(api.CleanupRunRequest{DryRun: true, Force: true, Only: []string{"trash"}, ProviderOrphans: "delete"}, "api")
	if err != nil {
		t.Fatal(err)
	}
	want := cleanup.RunOptions{DryRun: true, Force: true, Only: []cleanup.Kind{"trash"}, Trigger: "api", ProviderOrphans: "delete"}
	if !reflect.DeepEqual(opts, want) {
		t.Errorf("RunOptionsFrom = %+v, want %+v", opts, want)
	}
	if _, err := cleanup.RunOptionsFrom(api.CleanupRunRequest{Only: []string{"nope"}}, "api"); err == nil {
		t.Error("unknown kind accepted")
	}
}
