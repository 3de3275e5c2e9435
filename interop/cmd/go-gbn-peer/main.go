// Command go-gbn-peer runs upstream's go-back-N connection (lightning-node-connect's gbn
// package, with the mailbox layer's settings) over standard input and output, so that our
// Rust GBN machine can be tested against the real Go peer: loss, keepalive, close.
//
// Framing on stdin/stdout: each GBN packet is a 4-byte big-endian length, then the packet.
// Every message received is sent back unchanged (an echo). On stderr it prints
// "READY", "CONNECTED" and, when the connection ends, "EXIT <reason>", then exits 3.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/btcsuite/btclog"
	"github.com/lightninglabs/lightning-node-connect/gbn"
)

// The mailbox layer's settings (mailbox/client_conn.go in lightning-node-connect).
const (
	resendMultiplier       = 5
	timeoutUpdateFrequency = 200
	handshakeTimeout       = 2 * time.Second
	clientPing             = 7 * time.Second
	serverPing             = 5 * time.Second
	pongTimeout            = 3 * time.Second
	boostPercent           = 0.5
)

func main() {
	role := flag.String("role", "server", "server (the node's side) or client (the app's side)")
	window := flag.Int("n", 20, "window size the client proposes")
	trace := flag.Bool("trace", false, "log upstream gbn's trace lines on stderr")
	flag.Parse()
	if *trace {
		logger := btclog.NewBackend(os.Stderr).Logger("GBN")
		logger.SetLevel(btclog.LevelTrace)
		gbn.UseLogger(logger)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	in := bufio.NewReader(os.Stdin)
	var outMu sync.Mutex
	out := bufio.NewWriter(os.Stdout)

	send := func(_ context.Context, b []byte) error {
		outMu.Lock()
		defer outMu.Unlock()
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
		if _, err := out.Write(hdr[:]); err != nil {
			return err
		}
		if _, err := out.Write(b); err != nil {
			return err
		}
		return out.Flush()
	}
	recv := func(ctx context.Context) ([]byte, error) {
		var hdr [4]byte
		if _, err := io.ReadFull(in, hdr[:]); err != nil {
			return nil, err
		}
		b := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(in, b); err != nil {
			return nil, err
		}
		return b, nil
	}

	ping := serverPing
	if *role == "client" {
		ping = clientPing
	}
	opts := []gbn.Option{
		gbn.WithTimeoutOptions(
			gbn.WithResendMultiplier(resendMultiplier),
			gbn.WithTimeoutUpdateFrequency(timeoutUpdateFrequency),
			gbn.WithHandshakeTimeout(handshakeTimeout),
			gbn.WithKeepalivePing(ping, pongTimeout),
			gbn.WithBoostPercent(boostPercent),
		),
		gbn.WithOnFIN(func() { fmt.Fprintln(os.Stderr, "FIN") }),
	}

	fmt.Fprintln(os.Stderr, "READY")
	var (
		conn *gbn.GoBackNConn
		err  error
	)
	switch *role {
	case "server":
		conn, err = gbn.NewServerConn(ctx, send, recv, opts...)
	case "client":
		conn, err = gbn.NewClientConn(ctx, uint8(*window), send, recv, opts...)
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "EXIT handshake: %v\n", err)
		os.Exit(3)
	}
	fmt.Fprintln(os.Stderr, "CONNECTED")
	// Recv returns errRecvTimeout after its (long) default; keep waiting instead.
	conn.SetRecvTimeout(time.Hour)

	// Receive and send in separate goroutines with an unbounded queue between them, as a
	// real application over the conn does (grpc-go reads and writes concurrently).
	// Upstream's receive loop blocks while the application does not read, and then no ACK
	// is processed either: an echo loop that Sends between Recvs deadlocks a small window.
	var (
		mu      sync.Mutex
		pending [][]byte
		wake    = make(chan struct{}, 1)
	)
	go func() {
		for {
			msg, err := conn.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = errors.New("closed")
				}
				fmt.Fprintf(os.Stderr, "EXIT recv: %v\n", err)
				os.Exit(3)
			}
			mu.Lock()
			pending = append(pending, msg)
			mu.Unlock()
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}()
	for range wake {
		for {
			mu.Lock()
			if len(pending) == 0 {
				mu.Unlock()
				break
			}
			msg := pending[0]
			pending = pending[1:]
			mu.Unlock()
			if err := conn.Send(msg); err != nil {
				fmt.Fprintf(os.Stderr, "EXIT send: %v\n", err)
				os.Exit(3)
			}
		}
	}
}
