package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/internal/versitygw"
	"github.com/filehub/filehub/s3"
)

// Environment of BenchmarkVersitygw.
const (
	// benchLargeEnv sets the size of the large object, in MiB (default
	// 256; the figures in the report are for 1024).
	benchLargeEnv = "FILEHUB_BENCH_S3_LARGE_MIB"
	// benchRoundsEnv sets the number of alternating rounds (default 3).
	benchRoundsEnv = "FILEHUB_BENCH_S3_ROUNDS"
)

const (
	benchSmallSize        = 4 << 10
	benchSmallConcurrency = 50
)

// BenchmarkVersitygw measures the store on a real S3 server (versitygw on a
// posix directory, started here) against the plain AWS SDK writing the same
// bytes to the same server, in alternating rounds, and reports per-round
// throughputs and their ratios (the median as metrics, every round in the
// log):
//
//   - small: 4 KiB objects, 50 goroutines. filehub stages each, hashes it
//     (SHA-256, as the ingest pipeline does), commits it under its sum and
//     closes it; "headfirst" does the same with a HEAD before the Commit;
//     the baseline is one PutObject of the same bytes. Iterations (b.N)
//     are objects per round and target: run with e.g. -benchtime=3000x.
//   - dedup: the same for 4 KiB content that is stored already, Commit
//     (a conditional PutObject answered 412) against headfirst (which
//     stops after the HEAD) as the baseline.
//   - large: one object per round and target (run with -benchtime=1x), of
//     FILEHUB_BENCH_S3_LARGE_MIB (default 256) MiB, written in 64 KiB
//     chunks and hashed on a second goroutine as the pipeline does. The
//     targets: filehub as it is (CompleteMultipartUpload of a temp key,
//     HEAD, CopyObject, DELETE at Close); filehub copying with
//     UploadPartCopy instead ("partcopy"); the temp object alone without
//     any copy ("nocopy", what a layout in which the staged object does
//     not move could reach at best); and the baseline, a plain multipart
//     upload (CreateMultipartUpload, 8 MiB UploadParts two at a time,
//     CompleteMultipartUpload) of the same bytes.
//
// Each round uses new content, so no commit finds its object stored.
//
//	go test ./s3/ -run '^$' -bench 'Versitygw/(small|dedup)' -benchtime 3000x
//	FILEHUB_BENCH_S3_LARGE_MIB=1024 go test ./s3/ -run '^$' -bench 'Versitygw/large' -benchtime 1x -timeout 30m
func BenchmarkVersitygw(b *testing.B) {
	g := versitygw.Start(b)
	rounds := envInt(b, benchRoundsEnv, 3)
	b.Run("small", func(b *testing.B) { benchSmall(b, g, rounds) })
	b.Run("dedup", func(b *testing.B) { benchDedup(b, g, rounds) })
	b.Run("large", func(b *testing.B) { benchLarge(b, g, rounds, envInt(b, benchLargeEnv, 256)<<20) })
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// benchTarget writes object i (every object of a run has its own i, so
// its own content); after, if set, runs after each of its rounds, outside
// the timed part.
type benchTarget struct {
	name  string
	write func(ctx context.Context, i int) error
	after func()
}

// runRounds runs every target on per objects (with conc goroutines), round
// after round, and reports each target's median rate in unit/s and the
// median per-round ratio of each target to the last (the baseline).
func runRounds(b *testing.B, rounds, per, conc int, unit string, perObj float64, targets []benchTarget) {
	ctx := context.Background()
	rates := make([][]float64, len(targets))
	next := 0 // object counter across rounds: every object is new
	b.ResetTimer()
	for range rounds {
		for ti, tg := range targets {
			start := time.Now()
			var eg errgroup.Group
			eg.SetLimit(conc)
			for range per {
				i := next
				next++
				eg.Go(func() error { return tg.write(ctx, i) })
			}
			if err := eg.Wait(); err != nil {
				b.Fatalf("%s: %v", tg.name, err)
			}
			rates[ti] = append(rates[ti], float64(per)*perObj/time.Since(start).Seconds())
			if tg.after != nil {
				tg.after()
			}
		}
	}
	b.StopTimer()
	base := rates[len(rates)-1]
	var log []string
	for ti, tg := range targets {
		b.ReportMetric(median(rates[ti]), tg.name+"-"+unit+"/s")
		line := fmt.Sprintf("%s %s/s: %s", tg.name, unit, fmtFloats(rates[ti]))
		if ti < len(targets)-1 {
			ratios := make([]float64, len(base))
			for r := range base {
				ratios[r] = rates[ti][r] / base[r]
			}
			b.ReportMetric(median(ratios), tg.name+"/"+targets[len(targets)-1].name)
			line += "; ratio per round: " + fmtFloats(ratios)
		}
		log = append(log, line)
	}
	b.Logf("%d rounds of %d objects per target:\n%s", rounds, per, strings.Join(log, "\n"))
}

func benchSmall(b *testing.B, g *versitygw.Server, rounds int) {
	s := mustOpenGW(b, g, "", s3.Config{})
	client := g.Client()
	bucket := g.CreateBucket(b)
	template := blobBytes(60, benchSmallSize)
	content := func(i int) []byte {
		data := slices.Clone(template)
		binary.BigEndian.PutUint64(data, uint64(i))
		return data
	}
	per := max(1, b.N)
	runRounds(b, rounds, per, benchSmallConcurrency, "obj", 1, []benchTarget{
		{"filehub", func(ctx context.Context, i int) error {
			return stageHashCommit(ctx, s, content(i), sha256.New(), false)
		}, nil},
		// The alternative: a HEAD before the Commit, to skip the
		// upload of content that is stored already.
		{"headfirst", func(ctx context.Context, i int) error {
			return stageHashCommit(ctx, s, content(i), sha256.New(), true)
		}, nil},
		{"PutObject", func(ctx context.Context, i int) error {
			data := content(i)
			_, err := client.PutObject(ctx, &awss3.PutObjectInput{
				Bucket: &bucket, Key: aws.String("base/" + strconv.Itoa(i)),
				Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
			})
			return err
		}, nil},
	})
}

// stageHashCommit is the ingest pipeline's use of a staged blob for a body
// of one chunk: hash, write, commit under the sum, close. With headFirst,
// a Stat (HEAD) comes first, and Commit only if the object is missing.
func stageHashCommit(ctx context.Context, s *s3.Store, data []byte, h hash.Hash, headFirst bool) error {
	st, err := s.Stage(ctx)
	if err != nil {
		return err
	}
	defer st.Close(ctx)
	h.Write(data)
	if _, err := st.Write(data); err != nil {
		return err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if headFirst {
		_, err := s.Stat(ctx, sum)
		if err == nil {
			return st.Close(ctx)
		}
		if filehub.ErrorCode(err) != filehub.ENOTFOUND {
			return err
		}
	}
	if err := st.Commit(ctx, sum); err != nil {
		return err
	}
	return st.Close(ctx)
}

// benchDedup commits content that is stored already: the conditional
// PutObject that finds the object (412) against HEAD-first, which would
// stop at the HEAD.
func benchDedup(b *testing.B, g *versitygw.Server, rounds int) {
	s := mustOpenGW(b, g, "", s3.Config{})
	template := blobBytes(62, benchSmallSize)
	const distinct = 1000
	content := func(i int) []byte {
		data := slices.Clone(template)
		binary.BigEndian.PutUint64(data, uint64(i%distinct))
		return data
	}
	for i := range distinct {
		if err := stageHashCommit(context.Background(), s, content(i), sha256.New(), false); err != nil {
			b.Fatal(err)
		}
	}
	runRounds(b, rounds, max(1, b.N), benchSmallConcurrency, "obj", 1, []benchTarget{
		{"commit", func(ctx context.Context, i int) error {
			return stageHashCommit(ctx, s, content(i), sha256.New(), false)
		}, nil},
		{"headfirst", func(ctx context.Context, i int) error {
			return stageHashCommit(ctx, s, content(i), sha256.New(), true)
		}, nil},
	})
}

func benchLarge(b *testing.B, g *versitygw.Server, rounds, size int) {
	// One object at a time (runRounds with concurrency 1), so the
	// targets share one buffer, made unique per object.
	data := blobBytes(61, size)
	unique := func(i int) {
		binary.BigEndian.PutUint64(data, uint64(i)+1<<40)
	}
	// Each target has a bucket of its own; objects are deleted after
	// each round, outside the timed part, to bound the disk space used.
	copyStore := mustOpenGW(b, g, "", s3.Config{})
	partStore := mustOpenGW(b, g, "", s3.Config{})
	s3.SetCopyLimits(partStore, 0, 512<<20)
	noCopy := mustOpenGW(b, g, "", s3.Config{})
	client := g.Client()
	bucket := g.CreateBucket(b)
	var deletes []func()
	deleteAll := func() {
		for _, d := range deletes {
			d()
		}
		deletes = nil
	}
	defer deleteAll()
	filehub := func(s *s3.Store, commit bool) func(ctx context.Context, i int) error {
		return func(ctx context.Context, i int) error {
			unique(i)
			st, err := s.Stage(ctx)
			if err != nil {
				return err
			}
			defer st.Close(ctx)
			sum, err := hashWhileWriting(data, st.Write)
			if err != nil {
				return err
			}
			if commit {
				err = st.Commit(ctx, sum)
			} else {
				err = st.Sync()
			}
			if err == nil {
				err = st.Close(ctx)
			}
			if err == nil && commit {
				deletes = append(deletes, func() { s.Delete(context.Background(), sum) })
			}
			return err
		}
	}
	baseline := func(ctx context.Context, i int) error {
		unique(i)
		key := "base/" + strconv.Itoa(i)
		if err := multipartUpload(ctx, client, bucket, key, data, s3.DefaultPartSize); err != nil {
			return err
		}
		deletes = append(deletes, func() {
			client.DeleteObject(context.Background(), &awss3.DeleteObjectInput{Bucket: &bucket, Key: &key})
		})
		return nil
	}
	per := max(1, b.N)
	runRounds(b, rounds, per, 1, "MiB", float64(size)/(1<<20), []benchTarget{
		{"filehub", filehub(copyStore, true), deleteAll},
		{"partcopy", filehub(partStore, true), deleteAll},
		{"nocopy", filehub(noCopy, false), deleteAll},
		{"Multipart", baseline, deleteAll},
	})
}

// hashWhileWriting writes data in the pipeline's 64 KiB chunks with write
// while a second goroutine hashes them, as files.Upload does, and returns
// the hex SHA-256.
func hashWhileWriting(data []byte, write func([]byte) (int, error)) (string, error) {
	chunks := make(chan []byte, 4)
	sum := make(chan string)
	go func() {
		h := sha256.New()
		for c := range chunks {
			h.Write(c)
		}
		sum <- hex.EncodeToString(h.Sum(nil))
	}()
	var err error
	for off := 0; off < len(data) && err == nil; off += benchChunk {
		c := data[off:min(off+benchChunk, len(data))]
		chunks <- c
		_, err = write(c)
	}
	close(chunks)
	s := <-sum
	return s, err
}

// multipartUpload is the plain SDK's multipart upload of data to key, in
// parts of partSize, two in flight.
func multipartUpload(ctx context.Context, c *awss3.Client, bucket, key string, data []byte, partSize int) error {
	out, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return err
	}
	n := (len(data) + partSize - 1) / partSize
	parts := make([]types.CompletedPart, n)
	var eg errgroup.Group
	eg.SetLimit(2)
	for p := range n {
		eg.Go(func() error {
			part := data[p*partSize : min((p+1)*partSize, len(data))]
			po, err := c.UploadPart(ctx, &awss3.UploadPartInput{
				Bucket: &bucket, Key: &key, UploadId: out.UploadId, PartNumber: aws.Int32(int32(p + 1)),
				Body: bytes.NewReader(part), ContentLength: aws.Int64(int64(len(part))),
			})
			if err != nil {
				return err
			}
			parts[p] = types.CompletedPart{ETag: po.ETag, PartNumber: aws.Int32(int32(p + 1))}
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		c.AbortMultipartUpload(context.WithoutCancel(ctx), &awss3.AbortMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: out.UploadId})
		return err
	}
	_, err = c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{
		Bucket: &bucket, Key: &key, UploadId: out.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	return err
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func fmtFloats(v []float64) string {
	var parts []string
	for _, x := range v {
		parts = append(parts, strconv.FormatFloat(x, 'f', 3, 64))
	}
	return strings.Join(parts, " ")
}
