package server

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// certReloader serves the certificate of a PEM certificate and key file
// pair and re-reads them at each TLS handshake, so that a renewed
// certificate (certbot, cert-manager) is used from the next connection on
// without a restart. Reading two small files costs far less than the
// handshake itself, and unlike a modification-time check it cannot miss a
// renewal written within the file system's time granularity. A pair that
// fails to load (a half-written renewal) is logged and the previous
// certificate kept; the next handshake tries again.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu              sync.Mutex
	cert            *tls.Certificate
	certPEM, keyPEM []byte
	failed          bool // the last change could not be loaded (logged once)
}

// newCertReloader loads the pair once: a server must not start with a
// certificate it cannot serve.
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	certPEM, keyPEM, err := r.read()
	if err != nil {
		return nil, err
	}
	if err := r.load(certPEM, keyPEM); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) read() (certPEM, keyPEM []byte, err error) {
	if certPEM, err = os.ReadFile(r.certFile); err != nil {
		return nil, nil, fmt.Errorf("TLS certificate: %w", err)
	}
	if keyPEM, err = os.ReadFile(r.keyFile); err != nil {
		return nil, nil, fmt.Errorf("TLS key: %w", err)
	}
	return certPEM, keyPEM, nil
}

func (r *certReloader) load(certPEM, keyPEM []byte) error {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("TLS certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.certPEM, r.keyPEM = &cert, certPEM, keyPEM
	return nil
}

// getCertificate is tls.Config.GetCertificate.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	certPEM, keyPEM, err := r.read()
	if err != nil || (bytes.Equal(certPEM, r.certPEM) && bytes.Equal(keyPEM, r.keyPEM)) {
		return r.cert, nil // unchanged, or being replaced: keep serving
	}
	if err := r.load(certPEM, keyPEM); err != nil {
		if !r.failed {
			r.log.Warn("TLS certificate changed but cannot be loaded; serving the previous one", "err", err)
		}
		r.failed = true
		return r.cert, nil
	}
	r.failed = false
	r.log.Info("TLS certificate reloaded", "cert", r.certFile)
	return r.cert, nil
}

// tlsConfig returns the TLS configuration of the API listener: the
// reloaded certificate, TLS 1.2 at least, and ALPN offering HTTP/2 and
// HTTP/1.1 (WebSocket upgrades need HTTP/1.1, which WebSocket clients ask
// for).
func (r *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{
		GetCertificate: r.getCertificate,
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}
