package wsserver

import (
	"fmt"
	"strings"
	"testing"
)

// Frames packed for a save come back one by one, with their seqs, events
// included, also when a pack is split by size.
func TestPackFramesRoundTrip(t *testing.T) {
	var out []outFrame
	for seq := int64(7); seq < 40; seq++ {
		if seq%5 == 0 {
			out = append(out, outFrame{seq: seq, ev: &hubEvent{id: seq, json: []byte(`{"id":` + fmt.Sprint(seq) + `}`)}})
			continue
		}
		data := fmt.Sprintf(`{"type":"msg","seq":%d,"data":"%s"}`, seq, strings.Repeat("x", int(seq)*700))
		out = append(out, outFrame{seq: seq, data: []byte(data)})
	}
	packs := packFrames(out)
	if len(packs) < 2 || len(packs) >= len(out) {
		t.Fatalf("%d frames in %d packs, want several frames per pack and more than one pack", len(out), len(packs))
	}
	got := unpackFrames(packs)
	if len(got) != len(out) {
		t.Fatalf("unpacked %d frames, want %d", len(got), len(out))
	}
	for i, f := range got {
		if f.Seq != out[i].seq || string(f.Data) != string(out[i].encoded()) {
			t.Fatalf("frame %d = %d %.40s, want %d %.40s", i, f.Seq, f.Data, out[i].seq, out[i].encoded())
		}
		if back := decodeOutFrame(f); (back.ev != nil) != (out[i].ev != nil) || string((&back).encoded()) != string(f.Data) {
			t.Fatalf("frame %d does not decode back to itself", i)
		}
	}
	if packFrames(nil) != nil {
		t.Error("packFrames(nil) is not nil")
	}
}
