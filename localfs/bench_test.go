package localfs_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/filehub/filehub/localfs"
)

const (
	benchSize  = 256 << 20
	benchChunk = 256 << 10
)

// BenchmarkCommit writes and commits 256 MiB in 256 KiB chunks, with and
// without write-behind, next to a plain os.Create+write+fsync+rename as the
// baseline. Compare the MB/s columns of one run: they share the machine's
// state (page cache, disk), which no absolute figure does.
func BenchmarkCommit(b *testing.B) {
	chunk := make([]byte, benchChunk)
	rand.NewChaCha8([32]byte{1}).Read(chunk)

	for _, bc := range []struct {
		name string
		cfg  localfs.Config
	}{
		{"WriteBehind", localfs.Config{}},
		{"NoWriteBehind", localfs.Config{DisableWriteBehind: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := localfs.Open(b.TempDir(), bc.cfg)
			if err != nil {
				b.Fatal(err)
			}
			ctx := b.Context()
			b.SetBytes(benchSize)
			i := 0
			for b.Loop() {
				// The store does not verify sums, so name each iteration's
				// object cheaply instead of hashing 256 MiB.
				sum := benchSum(i)
				i++
				st, err := s.Stage(ctx)
				if err != nil {
					b.Fatal(err)
				}
				for range benchSize / benchChunk {
					if _, err := st.Write(chunk); err != nil {
						b.Fatal(err)
					}
				}
				if err := st.Commit(ctx, sum); err != nil {
					b.Fatal(err)
				}
				if err := st.Close(ctx); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := s.Delete(ctx, sum); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}

	b.Run("PlainBaseline", func(b *testing.B) {
		dir := b.TempDir()
		tmp, blobs := filepath.Join(dir, "tmp"), filepath.Join(dir, "blobs")
		for _, d := range []string{tmp, blobs} {
			if err := os.Mkdir(d, 0o750); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(benchSize)
		i := 0
		for b.Loop() {
			sum := benchSum(i)
			i++
			final := filepath.Join(blobs, sum)
			if err := plainWrite(filepath.Join(tmp, sum), final, blobs, chunk); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := os.Remove(final); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}

// plainWrite is the reference: create, write, fsync, close, rename, fsync
// the directory.
func plainWrite(tmp, final, dir string, chunk []byte) error {
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	for range benchSize / benchChunk {
		if _, err := f.Write(chunk); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func benchSum(i int) string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(i))
	h := sha256.Sum256(b[:])
	return hex.EncodeToString(h[:])
}
