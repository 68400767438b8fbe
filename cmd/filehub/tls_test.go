package main_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/filehub/filehub"
	main "github.com/filehub/filehub/cmd/filehub"
)

// testCA is a private certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "filehub test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes a certificate for 127.0.0.1 with the given serial, and its
// key, to certFile and keyFile.
func (ca *testCA) issue(t *testing.T, serial int64, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// Key first: the reloader sees a new pair once the certificate lands.
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLS serves with --tls-cert/--tls-key signed by a private CA and
// checks, with --ca-cert, an upload, a download and a wss:// watch; that
// HTTP/2 is negotiated; that a client without the CA is refused; and that
// a renewed certificate is served without a restart.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	certFile, keyFile, caFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "ca.pem")
	ca.issue(t, 100, certFile, keyFile)
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	s := MustRunMain(t, t.TempDir(), map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, func(c *main.ServeConfig) {
		c.TLSCert, c.TLSKey = certFile, keyFile
	})
	// A start with a pair it cannot serve fails, naming the file.
	err := StartErr(t, t.TempDir(), map[string]string{"FILEHUB_BOOTSTRAP_KEY": testKey}, func(c *main.ServeConfig) {
		c.TLSCert, c.TLSKey = caFile, keyFile // the CA's certificate does not match the key
	})
	if err == nil || !strings.Contains(err.Error(), "TLS certificate") {
		t.Errorf("start with a mismatched pair: %v, want a TLS certificate error", err)
	}
	url := "https://" + s.Addr()
	env := map[string]string{"FILEHUB_SERVER": url, "FILEHUB_KEY": testKey, "FILEHUB_CA_CERT": caFile}

	w := startWatch(t, env)
	up := uploadFile(t, env, "secret.txt", "over TLS")
	out := filepath.Join(t.TempDir(), "got.txt")
	MustCLI(t, env, "get", up.ID, "-o", out)
	mustContent(t, out, []byte("over TLS"))
	w.waitEvents(t, filehub.EventFileCreated)

	// Without the CA the certificate is not trusted.
	MustFail(t, map[string]string{"FILEHUB_SERVER": url, "FILEHUB_KEY": testKey}, main.ExitFailure, "certificate", "ls")

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.pem)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("GET /healthz over TLS used %s, want HTTP/2", resp.Proto)
	}

	// A renewed certificate is served from the next handshake on.
	serial := func() int64 {
		t.Helper()
		conn, err := tls.Dial("tcp", s.Addr(), &tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(); got != 100 {
		t.Fatalf("serial %d, want 100", got)
	}
	ca.issue(t, 101, certFile, keyFile)
	if got := serial(); got != 101 {
		t.Errorf("after renewal the server presents serial %d, want 101", got)
	}
	if r := MustCLI(t, env, "ls"); !strings.Contains(r.Stdout, up.ID) {
		t.Errorf("ls after renewal lacks %s", up.ID)
	}
}
