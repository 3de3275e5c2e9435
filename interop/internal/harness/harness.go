// Package harness holds what the interop programs share: the JSON state file that
// keeps keys between runs (so an app or node restart reconnects with Noise KK), the
// relay TLS options, logging to stderr and the machine-readable stdout lines the
// Rust tests wait on.
//
// Everything here is our own code on the public APIs of lightning-node-connect,
// lnd and grpc-go; nothing upstream is copied.
package harness

import (
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btclog"
	"github.com/lightninglabs/lightning-node-connect/gbn"
	"github.com/lightninglabs/lightning-node-connect/mailbox"
	"github.com/lightningnetwork/lnd/keychain"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// State is what one side keeps between runs, as litd keeps a session: its static
// key, the pairing entropy, the peer's static key once paired, and the auth data
// (the node's macaroon line; the app stores what it received).
type State struct {
	LocalPriv string `json:"local_priv"`
	Entropy   string `json:"entropy"`
	RemotePub string `json:"remote_pub,omitempty"`
	AuthData  string `json:"auth_data,omitempty"`
}

var stateMu sync.Mutex

// LoadState reads a state file; a missing file is not an error (nil state).
func LoadState(path string) (*State, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state %s: %w", path, err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse state %s: %w", path, err)
	}
	return &s, nil
}

// Save writes the state file atomically (temp file + rename), mode 0600.
func (s *State) Save(path string) error {
	if path == "" {
		return nil
	}
	stateMu.Lock()
	defer stateMu.Unlock()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return os.Rename(tmp, path)
}

// Keys decodes the state's keys and entropy.
func (s *State) Keys() (keychain.SingleKeyECDH, *btcec.PublicKey, []byte, error) {
	privBytes, err := hex.DecodeString(s.LocalPriv)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("local_priv: %w", err)
	}
	priv, _ := btcec.PrivKeyFromBytes(privBytes)
	entropy, err := hex.DecodeString(s.Entropy)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("entropy: %w", err)
	}
	var remote *btcec.PublicKey
	if s.RemotePub != "" {
		b, err := hex.DecodeString(s.RemotePub)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("remote_pub: %w", err)
		}
		remote, err = btcec.ParsePubKey(b)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("remote_pub: %w", err)
		}
	}
	return &keychain.PrivKeyECDH{PrivKey: priv}, remote, entropy, nil
}

// NewState makes a fresh key; the entropy comes from `phrase` (ten words) or, if
// empty, a new random phrase. Returns the phrase too.
func NewState(phrase string) (*State, string, error) {
	var entropy [mailbox.NumPassphraseEntropyBytes]byte
	if phrase == "" {
		words, e, err := mailbox.NewPassphraseEntropy()
		if err != nil {
			return nil, "", err
		}
		entropy = e
		phrase = strings.Join(words[:], " ")
	} else {
		var words [mailbox.NumPassphraseWords]string
		fields := strings.Fields(phrase)
		if len(fields) != mailbox.NumPassphraseWords {
			return nil, "", fmt.Errorf("pairing phrase must have %d words, got %d",
				mailbox.NumPassphraseWords, len(fields))
		}
		copy(words[:], fields)
		entropy = mailbox.PassphraseMnemonicToEntropy(words)
	}
	priv, err := btcec.NewPrivateKey()
	if err != nil {
		return nil, "", err
	}
	return &State{
		LocalPriv: hex.EncodeToString(priv.Serialize()),
		Entropy:   hex.EncodeToString(entropy[:]),
	}, phrase, nil
}

// PhraseOf turns stored entropy back into the ten words.
func PhraseOf(entropyHex string) (string, error) {
	b, err := hex.DecodeString(entropyHex)
	if err != nil {
		return "", err
	}
	var e [mailbox.NumPassphraseEntropyBytes]byte
	if len(b) != len(e) {
		return "", fmt.Errorf("entropy must be %d bytes", len(e))
	}
	copy(e[:], b)
	words, err := mailbox.PassphraseEntropyToMnemonic(e)
	if err != nil {
		return "", err
	}
	return strings.Join(words[:], " "), nil
}

// TLSMode is how a program reaches the relay.
type TLSMode string

const (
	// SkipVerify is TLS without certificate checks (a loopback relay's
	// self-signed certificate).
	SkipVerify TLSMode = "skip-verify"
	// Insecure is plaintext h2c (gRPC transport only; lightning-node-connect's
	// WebSocket client always dials wss://).
	Insecure TLSMode = "insecure"
	// System verifies against the system roots.
	System TLSMode = "system"
)

// DialOption is the grpc-go transport credential for the relay.
func (m TLSMode) DialOption() (grpc.DialOption, error) {
	switch m {
	case SkipVerify:
		// The WebSocket client of lightning-node-connect uses
		// http.DefaultClient, so skip-verify has to reach it there too.
		if t, ok := http.DefaultTransport.(*http.Transport); ok {
			t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec
		}
		return grpc.WithTransportCredentials(credentials.NewTLS(
			&tls.Config{InsecureSkipVerify: true}, //nolint:gosec
		)), nil
	case Insecure:
		return grpc.WithTransportCredentials(insecure.NewCredentials()), nil
	case System, "":
		return grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{})), nil
	default:
		return nil, fmt.Errorf("unknown --mailbox-tls %q (skip-verify, insecure, system)", m)
	}
}

// SetupLogging sends lightning-node-connect's mailbox and gbn logs to stderr at
// `level` (off, error, info, debug, trace).
func SetupLogging(level string) {
	backend := btclog.NewBackend(os.Stderr)
	lvl, ok := btclog.LevelFromString(level)
	if !ok {
		lvl = btclog.LevelOff
	}
	mb := backend.Logger(mailbox.Subsystem)
	mb.SetLevel(lvl)
	mailbox.UseLogger(mb)
	g := backend.Logger(gbn.Subsystem)
	g.SetLevel(lvl)
	gbn.UseLogger(g)
}

var start = time.Now()

var outMu sync.Mutex

// Emit prints one machine-readable line on stdout: `KIND key=value ...` with the
// milliseconds since start as `t_ms`. Values with spaces are quoted.
func Emit(kind string, kv ...string) {
	outMu.Lock()
	defer outMu.Unlock()
	var b strings.Builder
	b.WriteString(kind)
	for i := 0; i+1 < len(kv); i += 2 {
		v := kv[i+1]
		if strings.ContainsAny(v, " \t") {
			v = fmt.Sprintf("%q", v)
		}
		fmt.Fprintf(&b, " %s=%s", kv[i], v)
	}
	fmt.Fprintf(&b, " t_ms=%d\n", time.Since(start).Milliseconds())
	_, _ = os.Stdout.WriteString(b.String())
}

// Fatal prints `ERROR msg=...` on stdout and the error on stderr, then exits 1.
func Fatal(step string, err error) {
	Emit("ERROR", "step", step, "msg", err.Error())
	fmt.Fprintf(os.Stderr, "%s: %v\n", step, err)
	os.Exit(1)
}
