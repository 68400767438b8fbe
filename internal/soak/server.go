package soak

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is the filehub serve process, restarted on the same address.
type server struct {
	bin, dir, addr, key string
	log                 *slog.Logger

	mu       sync.Mutex
	cmd      *exec.Cmd
	waited   chan struct{}
	restarts int
}

// start runs `filehub serve` and waits until it answers /healthz.
func (s *server) start(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(s.dir, "soak-server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, "serve", "--data-dir", s.dir, "--listen", s.addr,
		"--min-free-space", "0", "--rate-limit", "0", "--shutdown-timeout", "2s",
		// Cleanup as often and as eagerly as it can go, so that its
		// deletions race the uploads.
		"--cleanup-interval", "2s", "--blob-grace", "1s", "--trash-grace", "2s", "--upload-expiry", "30s",
		"--max-delete-fraction", "1")
	cmd.Env = append(os.Environ(), "FILEHUB_BOOTSTRAP_KEY="+s.key)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	waited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // a SIGKILL is the expected end
		logf.Close()
		close(waited)
	}()
	s.mu.Lock()
	s.cmd, s.waited = cmd, waited
	s.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + s.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-waited:
			return fmt.Errorf("filehub serve exited at start; see %s", filepath.Join(s.dir, "soak-server.log"))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("filehub serve did not answer /healthz within 30s")
		}
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill() {
	s.mu.Lock()
	cmd, waited := s.cmd, s.waited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-waited
}

// restart kills the server and starts it again.
func (s *server) restart(ctx context.Context) error {
	s.kill()
	s.mu.Lock()
	s.restarts++
	s.mu.Unlock()
	s.log.Info("soak: server killed, restarting", "restarts", s.restarts)
	return s.start(ctx)
}

// stop ends the server gracefully (SIGTERM), or kills it after 10s.
func (s *server) stop() {
	s.mu.Lock()
	cmd, waited := s.cmd, s.waited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		s.kill()
	}
}

func (s *server) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// rss reads a process's VmRSS in bytes.
func rss(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// goroutines scrapes go_goroutines from the server's /metrics.
func goroutines(ctx context.Context, url, key string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return int(f), err
		}
	}
	return 0, fmt.Errorf("no go_goroutines in /metrics (status %d)", resp.StatusCode)
}
