// Package loadgen drives upload load against filehub (or the reference
// handler) from a separate process, so that the server's own memory and CPU
// can be measured cleanly. It backs the filehub-load command.
package loadgen

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes one load run.
type Config struct {
	URL         string // upload endpoint, e.g. http://127.0.0.1:8080/v1/files
	Key         string // bearer key; empty for the reference handler
	Count       int    // number of uploads
	Concurrency int    // uploads in flight at once
	Size        int64  // bytes per upload
	// Duplicate makes every upload carry the same content (dedup path);
	// otherwise each upload's content is unique.
	Duplicate bool
	// ServerPID, if set, is read for the server's peak RSS (VmHWM) at the end.
	ServerPID int
	// Tus sends each upload as one tus 1.0.0 creation-with-upload request
	// (POST with Upload-Length and the whole body, as tusd accepts) to URL,
	// a tus creation endpoint, instead of a filehub raw-body upload; 201
	// with an Upload-Offset equal to the size is success.
	Tus bool
}

// Result summarises a run.
type Result struct {
	Uploads       int     `json:"uploads"`
	Failures      int     `json:"failures"`
	FirstError    string  `json:"first_error,omitempty"`
	Seconds       float64 `json:"seconds"`
	UploadsPerSec float64 `json:"uploads_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"` // 10^6 bytes/s of payload
	P50Millis     float64 `json:"p50_ms"`
	P99Millis     float64 `json:"p99_ms"`
	ServerPeakRSS int64   `json:"server_peak_rss_bytes,omitempty"`
}

// Run performs the uploads and reports. It fails only on bad configuration;
// upload failures are counted in the result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Count <= 0 || cfg.Concurrency <= 0 || cfg.Size < 0 || cfg.URL == "" {
		return nil, fmt.Errorf("need a URL, a positive count and concurrency, and a size ≥ 0")
	}
	transport := newTransport(cfg.Concurrency)
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}

	var (
		next      atomic.Int64
		failures  atomic.Int64
		firstErr  sync.Once
		errText   string
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, cfg.Count)
		wg        sync.WaitGroup
	)
	start := time.Now()
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(cfg.Count) || ctx.Err() != nil {
					return
				}
				seed := uint64(i) + 1 //nolint:gosec // i is a non-negative upload index
				if cfg.Duplicate {
					seed = 1
				}
				t0 := time.Now()
				err := upload(ctx, client, cfg, i, seed)
				d := time.Since(t0)
				if err != nil {
					failures.Add(1)
					firstErr.Do(func() { errText = err.Error() })
					continue
				}
				mu.Lock()
				latencies = append(latencies, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	res := &Result{
		Uploads:    len(latencies),
		Failures:   int(failures.Load()),
		FirstError: errText,
		Seconds:    elapsed.Seconds(),
	}
	res.UploadsPerSec = float64(res.Uploads) / elapsed.Seconds()
	res.MBPerSec = float64(res.Uploads) * float64(cfg.Size) / 1e6 / elapsed.Seconds()
	if len(latencies) > 0 {
		slices.Sort(latencies)
		res.P50Millis = ms(latencies[len(latencies)/2])
		res.P99Millis = ms(latencies[(len(latencies)*99)/100])
	}
	if cfg.ServerPID > 0 {
		res.ServerPeakRSS, _ = PeakRSS(cfg.ServerPID)
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func upload(ctx context.Context, client *http.Client, cfg Config, i int64, seed uint64) error {
	u := cfg.URL
	if !cfg.Tus {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + "name=load-" + strconv.FormatInt(i, 10) + ".bin"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, io.LimitReader(NewContent(seed), cfg.Size))
	if err != nil {
		return err
	}
	req.ContentLength = cfg.Size
	req.Header.Set("Content-Type", "application/octet-stream")
	if cfg.Tus {
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Length", strconv.FormatInt(cfg.Size, 10))
	}
	if cfg.Key != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.Key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if cfg.Tus {
		if off := resp.Header.Get("Upload-Offset"); off != strconv.FormatInt(cfg.Size, 10) {
			return fmt.Errorf("tus: Upload-Offset %q after the upload, want %d", off, cfg.Size)
		}
	}
	return nil
}

// NewContent returns an endless, deterministic stream of pseudo-random bytes
// for the seed: incompressible, unique per seed, and generated on the fly so
// that a 1 GiB upload never sits in the load tool's memory either. The first
// bytes are a fixed text-like header so that type sniffing classifies the
// content as application/octet-stream and no policy refuses it.
func NewContent(seed uint64) io.Reader {
	return &content{rng: rand.NewChaCha8(seedBytes(seed))}
}

func seedBytes(seed uint64) (s [32]byte) {
	binary.LittleEndian.PutUint64(s[:], seed)
	return s
}

// contentHeader starts every generated content. Its NUL byte makes type
// sniffing see binary data, and a fixed start means random bytes can never
// happen to look like an executable ("MZ…") and be refused.
const contentHeader = "FHLOAD\x00\x01"

type content struct {
	rng    *rand.ChaCha8
	header int // header bytes already sent
}

func (c *content) Read(p []byte) (int, error) {
	n := 0
	if c.header < len(contentHeader) {
		n = copy(p, contentHeader[c.header:])
		c.header += n
	}
	_, _ = c.rng.Read(p[n:]) // ChaCha8.Read never fails
	return len(p), nil
}

// PeakRSS returns a process's peak resident set size (VmHWM) in bytes.
// Linux only.
func PeakRSS(pid int) (int64, error) { return statusBytes(pid, "VmHWM:") }

// WriteJSON writes r as one JSON line.
func (r *Result) WriteJSON(w io.Writer) error { return json.NewEncoder(w).Encode(r) }

// newTransport is the HTTP transport of a load run: up to conns connections
// to the server under test, kept open between requests, no compression (the
// bodies are random or tiny).
func newTransport(conns int) *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		DisableCompression:  true,
	}
}
