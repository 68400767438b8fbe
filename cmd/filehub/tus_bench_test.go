package main_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestTusFigures measures the figures of docs/benchmarks.md: tus throughput
// of filehub (hashing, fsyncing, deduplicating) against tusd v2 with its
// filestore on the same machine, in alternating rounds, and filehub's peak
// RSS during 100 concurrent 10 MiB resumable uploads. It runs only when
// FILEHUB_TUSD names a tusd binary, built apart and never committed:
//
//	GOBIN=/tmp/tusd go install github.com/tus/tusd/v2/cmd/tusd@v2.9.1
//	FILEHUB_TUSD=/tmp/tusd/tusd go test -run TestTusFigures -v -timeout 60m ./cmd/filehub
//
// It asserts nothing about time: it logs the medians and their ratios.
func TestTusFigures(t *testing.T) {
	tusd := os.Getenv("FILEHUB_TUSD")
	if tusd == "" {
		t.Skip("FILEHUB_TUSD is not set: the tus figures are measured on demand (see the test's doc)")
	}
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("FILEHUB_TUS_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	bin := buildBinary(t)
	fh := StartProcess(t, bin, t.TempDir(), "--max-upload-size", "2GiB", "--max-open-uploads", "-1")
	td := startTusd(t, tusd, t.TempDir())
	targets := []tusTarget{
		{name: "filehub", endpoint: fh.URL + "/v1/uploads/", auth: "Bearer " + testKey},
		{name: "tusd", endpoint: td},
	}

	big := make([]byte, 64<<20)
	rand.Read(big)
	small := make([]byte, 256<<10)
	rand.Read(small)
	workloads := []struct {
		name  string
		bytes int64
		run   func(t *testing.T, tg tusTarget)
	}{
		{"1GiB_in_64MiB_chunks", 1 << 30, func(t *testing.T, tg tusTarget) {
			// Each round's content differs in its first byte, so
			// filehub stores it rather than deduplicating it.
			big[0]++
			tg.upload(t, 1<<30, 64<<20, func(off int64, n int) []byte { return big[:n] })
		}},
		{"1000x256KiB_c50", 1000 * 256 << 10, func(t *testing.T, tg tusTarget) {
			var wg sync.WaitGroup
			sem := make(chan struct{}, 50)
			for i := range 1000 {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					body := bytes.Clone(small)
					copy(body, fmt.Sprintf("%d-%d", i, time.Now().UnixNano()))
					tg.upload(t, int64(len(body)), len(body), func(int64, int) []byte { return body })
				})
			}
			wg.Wait()
		}},
	}
	for _, w := range workloads {
		times := map[string][]time.Duration{}
		for r := range rounds {
			// Alternate which server goes first, so neither always
			// meets a warmer or colder page cache.
			order := slices.Clone(targets)
			if r%2 == 1 {
				slices.Reverse(order)
			}
			for _, tg := range order {
				start := time.Now()
				w.run(t, tg)
				times[tg.name] = append(times[tg.name], time.Since(start))
			}
		}
		fm, tm := median(times["filehub"]), median(times["tusd"])
		t.Logf("%s: filehub median %v (%.0f MB/s), tusd median %v (%.0f MB/s), filehub/tusd throughput ratio %.2f; rounds filehub %v tusd %v",
			w.name, fm, mbps(w.bytes, fm), tm, mbps(w.bytes, tm), tm.Seconds()/fm.Seconds(), times["filehub"], times["tusd"])
	}

	// Peak RSS: 100 concurrent 10 MiB uploads in 2 MiB chunks, on a fresh
	// filehub process, read from /proc (VmHWM) at the end.
	for _, name := range []string{"filehub", "tusd"} {
		var tg tusTarget
		var pid int
		if name == "filehub" {
			p := StartProcess(t, bin, t.TempDir(), "--max-open-uploads", "-1")
			tg, pid = tusTarget{name: name, endpoint: p.URL + "/v1/uploads/", auth: "Bearer " + testKey}, p.cmd.Process.Pid
		} else {
			var cmd *exec.Cmd
			tg.endpoint, cmd = startTusdCmd(t, tusd, t.TempDir())
			tg.name, pid = name, cmd.Process.Pid
		}
		chunk := make([]byte, 2<<20)
		rand.Read(chunk)
		var wg sync.WaitGroup
		for i := range 100 {
			wg.Go(func() {
				first := bytes.Clone(chunk)
				copy(first, fmt.Sprint(i))
				tg.upload(t, 10<<20, 2<<20, func(off int64, n int) []byte {
					if off == 0 {
						return first[:n]
					}
					return chunk[:n]
				})
			})
		}
		wg.Wait()
		t.Logf("peak RSS of %s during 100 concurrent 10 MiB resumable uploads: %s", name, vmHWM(t, pid))
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func mbps(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

// vmHWM returns the peak resident set size of a process.
func vmHWM(t *testing.T, pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// tusTarget is a tus server to upload to.
type tusTarget struct {
	name     string
	endpoint string // creation URL
	auth     string // Authorization header, "" for none
}

var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}}

// upload creates an upload of size bytes and sends it in chunks; chunk(off,
// n) returns the n bytes at off.
func (tg tusTarget) upload(t *testing.T, size int64, chunkSize int, chunk func(off int64, n int) []byte) {
	do := func(method, url string, body []byte, hdr map[string]string) *http.Response {
		req, err := http.NewRequestWithContext(context.Background(), method, url, bytes.NewReader(body))
		if err != nil {
			t.Error(err)
			return nil
		}
		req.Header.Set("Tus-Resumable", "1.0.0")
		if tg.auth != "" {
			req.Header.Set("Authorization", tg.auth)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/offset+octet-stream")
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := benchClient.Do(req)
		if err != nil {
			t.Error(err)
			return nil
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := do("POST", tg.endpoint, nil, map[string]string{"Upload-Length": strconv.FormatInt(size, 10)})
	if resp == nil || resp.StatusCode != http.StatusCreated {
		t.Errorf("%s: create: %v", tg.name, resp)
		return
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "http") {
		loc = tg.endpoint[:strings.Index(tg.endpoint[len("http://"):], "/")+len("http://")] + loc
	}
	for off := int64(0); off < size; {
		n := int(min(int64(chunkSize), size-off))
		resp := do("PATCH", loc, chunk(off, n), map[string]string{"Upload-Offset": strconv.FormatInt(off, 10)})
		if resp == nil || resp.StatusCode != http.StatusNoContent {
			t.Errorf("%s: PATCH at %d: %v", tg.name, off, resp)
			return
		}
		off += int64(n)
	}
}

func startTusd(t *testing.T, bin, dir string) string {
	url, _ := startTusdCmd(t, bin, dir)
	return url
}

// startTusdCmd runs tusd with its filestore in dir on a free port and waits
// until it answers.
func startTusdCmd(t *testing.T, bin, dir string) (string, *exec.Cmd) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command(bin, "-host", "127.0.0.1", "-port", port, "-upload-dir", filepath.Join(dir, "data"))
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	url := "http://127.0.0.1:" + port + "/files/"
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("OPTIONS", url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			return url, cmd
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("tusd did not start: %s", logs.String())
	return "", nil
}
