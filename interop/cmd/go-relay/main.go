// go-relay runs aperture's HashMail relay (github.com/lightninglabs/aperture, the
// relay behind mailbox.terminal.lightning.today) on loopback: one port for the
// HashMail gRPC service and its WebSocket/REST gateway, TLS with aperture's own
// self-signed certificate (in --basedir) unless --insecure.
//
// It builds aperture.Config in code and calls aperture.NewAperture(cfg).Start,
// exactly what aperture's own main (aperture.Main) does after reading its YAML:
// L402/LSAT authentication disabled, no backend services, no Tor, no Prometheus,
// and an etcd client pointed at an address where nothing listens (aperture
// always creates one; only the L402 secret store would use it, and etcd's v3
// client dials lazily). A wrapper rather than the `aperture` binary because it
// can choose a free port and report on stdout once the port accepts TLS, which
// the tests wait on.
//
// stdout: `READY addr=127.0.0.1:PORT tls=true|false basedir=...`, once the port accepts
// TLS and the WebSocket gateway reaches the HashMail server behind it.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lightninglabs/aperture"
	"github.com/lnc-rs/lnc-rs/interop/internal/harness"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address; port 0 picks a free one")
	baseDir := flag.String("basedir", "", "aperture's directory (its tls.cert/tls.key); a temp dir if empty")
	insecure := flag.Bool("insecure", false, "plaintext h2c instead of TLS (Go's WebSocket client needs TLS)")
	debug := flag.String("debuglevel", "off", "aperture log level on stderr")
	flag.Parse()

	addr, err := resolve(*listen)
	if err != nil {
		harness.Fatal("listen", err)
	}
	dir := *baseDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "go-relay-"); err != nil {
			harness.Fatal("basedir", err)
		}
		defer os.RemoveAll(dir)
	}
	// Nothing listens on port 1: aperture only needs an etcd client object.
	cfg := &aperture.Config{
		ListenAddr:    addr,
		Insecure:      *insecure,
		BaseDir:       dir,
		Authenticator: &aperture.AuthConfig{Disable: true},
		Etcd:          &aperture.EtcdConfig{Host: "127.0.0.1:1"},
		HashMail: &aperture.HashMailConfig{
			Enabled:               true,
			MessageRate:           time.Millisecond,
			MessageBurstAllowance: math.MaxUint32,
		},
		Tor:        &aperture.TorConfig{},
		Prometheus: &aperture.PrometheusConfig{},
		DebugLevel: *debug,
	}
	a := aperture.NewAperture(cfg)
	errc := make(chan error, 1)
	if err := a.Start(errc); err != nil {
		harness.Fatal("start", err)
	}
	if err := waitUp(addr, !*insecure, errc); err != nil {
		harness.Fatal("start", err)
	}
	harness.Emit("READY", "addr", addr, "tls", fmt.Sprint(!*insecure), "basedir", dir)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
	case err := <-errc:
		harness.Fatal("serve", err)
	}
	_ = a.Stop()
	harness.Emit("STOPPED")
}

// resolve turns port 0 into a free port (aperture listens by address string).
func resolve(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", err
	}
	if port != "0" {
		return listen, nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitUp returns once the port completes a TLS handshake (or TCP connect).
func waitUp(addr string, useTLS bool, errc chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-errc:
			return err
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			if useTLS {
				tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec
				err = tc.Handshake()
			}
			c.Close()
			if err == nil && gatewayUp(addr, useTLS) {
				return nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("aperture did not serve HashMail on %s within 30s", addr)
}

// gatewayUp reports whether aperture's REST/WebSocket gateway reaches its own gRPC
// server. The gateway dials the listen address before aperture listens on it, and
// grpc-go then waits out its reconnect backoff (about 1 s): until that dial succeeds
// every WebSocket call fails with "connection error ... connection refused" (HTTP 503,
// Unavailable), which a test would measure as relay latency. A DELETE without a
// descriptor reaches the HashMail server and is refused there (not 503) once it is up.
func gatewayUp(addr string, useTLS bool) bool {
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	client := &http.Client{
		Timeout: time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
		},
	}
	req, err := http.NewRequest(
		http.MethodDelete, scheme+"://"+addr+"/v1/lightning-node-connect/hashmail", nil,
	)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	client.CloseIdleConnections()
	return resp.StatusCode != http.StatusServiceUnavailable
}
