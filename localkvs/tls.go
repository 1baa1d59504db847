package localkvs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// tlsMaterial is the local CA and the server certificate it signed.
type tlsMaterial struct {
	ca    *x509.Certificate
	caPEM []byte
	leaf  tls.Certificate
}

const (
	caFile      = "ca.pem"
	caKeyFile   = "ca-key.pem"
	certFile    = "cert.pem"
	certKeyFile = "cert-key.pem"
	// certMinLife: certificates expiring sooner than this are made anew.
	certMinLife = 7 * 24 * time.Hour
)

// loadOrCreateTLS reuses the CA and certificate in dataDir when they are
// present and valid for at least certMinLife, and otherwise makes new ones
// (written to dataDir when set: ca.pem is what clients trust).
func loadOrCreateTLS(dataDir string) (*tlsMaterial, error) {
	if dataDir != "" {
		if m, err := loadTLS(dataDir); err == nil {
			return m, nil
		}
	}
	m, files, err := createTLS()
	if err != nil {
		return nil, fmt.Errorf("localkvs: making the TLS certificate: %w", err)
	}
	if dataDir != "" {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("localkvs: DataDir: %w", err)
		}
		for name, data := range files {
			mode := os.FileMode(0o600)
			if name == caFile || name == certFile {
				mode = 0o644
			}
			if err := os.WriteFile(filepath.Join(dataDir, name), data, mode); err != nil {
				return nil, fmt.Errorf("localkvs: writing %s: %w", name, err)
			}
		}
	}
	return m, nil
}

func loadTLS(dir string) (*tlsMaterial, error) {
	caPEM, err := os.ReadFile(filepath.Join(dir, caFile))
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(caPEM)
	if blk == nil {
		return nil, errors.New("ca.pem holds no PEM block")
	}
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, err
	}
	leaf, err := tls.LoadX509KeyPair(filepath.Join(dir, certFile), filepath.Join(dir, certKeyFile))
	if err != nil {
		return nil, err
	}
	lc, err := x509.ParseCertificate(leaf.Certificate[0])
	if err != nil {
		return nil, err
	}
	soon := time.Now().Add(certMinLife)
	if ca.NotAfter.Before(soon) || lc.NotAfter.Before(soon) {
		return nil, errors.New("certificate expires soon")
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, name := range []string{"127.0.0.1", "::1", "localhost"} {
		if _, err := lc.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			return nil, err
		}
	}
	leaf.Leaf = lc
	return &tlsMaterial{ca: ca, caPEM: caPEM, leaf: leaf}, nil
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// newCert makes the certificate of tmpl with a new ECDSA P-256 key and
// serial number, valid from an hour before now, signed by parent with
// parentKey or, when parent is nil, self-signed: every certificate this
// package makes (newCA, createTLS, IssueIoTDeviceCertificate).
func newCert(tmpl *x509.Certificate, now time.Time, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	if tmpl.SerialNumber, err = serial(); err != nil {
		return nil, nil, err
	}
	tmpl.NotBefore = now.Add(-time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	return der, key, nil
}

// newCA makes a self-signed CA named commonName, valid from an hour
// before now for five years: the local CA of the server certificate
// (createTLS) and the IoT device CA (iot.go). The certificate's Raw is
// its DER.
func newCA(commonName string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	der, key, err := newCert(&x509.Certificate{
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"kvswebrtc local development"}},
		NotAfter:              now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}, now, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return c, key, nil
}

func createTLS() (*tlsMaterial, map[string][]byte, error) {
	now := time.Now()
	ca, caKey, err := newCA("kvswebrtc local CA", now)
	if err != nil {
		return nil, nil, err
	}
	der, key, err := newCert(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost", Organization: []string{"kvswebrtc local development"}},
		NotAfter:    now.Add(397 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}, now, ca, caKey)
	if err != nil {
		return nil, nil, err
	}
	caKeyDER, err := x509.MarshalECPrivateKey(caKey)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	leaf, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, err
	}
	files := map[string][]byte{
		caFile:      caPEM,
		caKeyFile:   pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: caKeyDER}),
		certFile:    certPEM,
		certKeyFile: keyPEM,
	}
	return &tlsMaterial{ca: ca, caPEM: caPEM, leaf: leaf}, files, nil
}
