// Command go-vectors re-derives the Go reference vectors in vectors/go/ by running upstream's
// code (lightning-node-connect's mailbox and gbn packages, lnd's aezeed word list; public API
// only) on the inputs the files record, and compares every value that API can produce with
// the file:
//
//   - pairing_phrase.json: words ⇄ entropy, word indices, SID, both stream IDs;
//   - xx_handshake_{v0,v1,v2,default_negotiation}.json and kk_handshake_v2.json: every
//     handshake act's wire bytes (so also the version bytes, the masked ephemeral, the
//     encrypted statics and auth data), the auth data the client receives, the remote
//     static each side learns, the stream IDs, and every transport record's header, body
//     and wire bytes, decrypted again by the other side;
//   - transport_key_rotation.json: the client's records #3…#1001 (keys rotate every 500);
//   - gbn_packets.json: each packet's encoding, its decode round trip, and what upstream's
//     Deserialize does with short and odd inputs (errors, and the one panic).
//
// Values that live only inside upstream's package (the chaining key and hash after each act,
// split keys, salts, the scrypt-stretched password) stay as recorded: the act and record
// bytes checked here depend on every one of them.
//
// Usage: go-vectors [-v] DIR. Exit status 0: every value equal; 1: mismatches (listed);
// 2: a file is missing or malformed.
package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/lightninglabs/lightning-node-connect/gbn"
	"github.com/lightninglabs/lightning-node-connect/mailbox"
	"github.com/lightningnetwork/lnd/aezeed"
	"github.com/lightningnetwork/lnd/keychain"
)

// badInput ends the run with status 2: the vectors, not upstream, are at fault.
type badInput struct{ msg string }

func fail(format string, a ...any) { panic(badInput{fmt.Sprintf(format, a...)}) }

// checker counts compared values and collects mismatches.
type checker struct {
	file    string
	n       int
	bad     []string
	verbose bool
}

func (c *checker) eq(path, file, upstream string) {
	c.n++
	if file != upstream {
		c.bad = append(c.bad, fmt.Sprintf("%s %s:\n    file:     %s\n    upstream: %s",
			c.file, path, file, upstream))
	} else if c.verbose {
		fmt.Printf("ok %s %s\n", c.file, path)
	}
}

// node is a decoded JSON value with path-checked accessors.
type node struct {
	v    any
	path string
}

func (n node) key(k string) node {
	m, ok := n.v.(map[string]any)
	if !ok {
		fail("%s is not an object", n.path)
	}
	v, ok := m[k]
	if !ok {
		fail("%s.%s is missing", n.path, k)
	}
	return node{v, n.path + "." + k}
}

func (n node) has(k string) bool {
	m, ok := n.v.(map[string]any)
	_, found := m[k]
	return ok && found
}

func (n node) list() []node {
	l, ok := n.v.([]any)
	if !ok {
		fail("%s is not a list", n.path)
	}
	out := make([]node, len(l))
	for i, v := range l {
		out[i] = node{v, fmt.Sprintf("%s[%d]", n.path, i)}
	}
	return out
}

func (n node) str() string {
	s, ok := n.v.(string)
	if !ok {
		fail("%s is not a string", n.path)
	}
	return s
}

func (n node) hex() []byte {
	b, err := hex.DecodeString(n.str())
	if err != nil {
		fail("%s: %v", n.path, err)
	}
	return b
}

func (n node) num() int {
	f, ok := n.v.(float64)
	if !ok {
		fail("%s is not a number", n.path)
	}
	return int(f)
}

func (n node) boolean() bool {
	b, ok := n.v.(bool)
	if !ok {
		fail("%s is not a boolean", n.path)
	}
	return b
}

// canon re-encodes a JSON value so that numbers and strings compare as the file has them.
func (n node) canon() string {
	b, err := json.Marshal(n.v)
	if err != nil {
		fail("%s: %v", n.path, err)
	}
	return string(b)
}

func load(dir, name string) node {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		fail("%v", err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		fail("%s: %v", name, err)
	}
	return node{v, name}
}

func main() {
	verbose := flag.Bool("v", false, "print every value that matched")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: go-vectors [-v] DIR (the vectors/go folder)")
		os.Exit(2)
	}
	dir := flag.Arg(0)
	var all []*checker
	run := func(file string, f func(c *checker, doc node)) {
		c := &checker{file: file, verbose: *verbose}
		all = append(all, c)
		f(c, load(dir, file))
	}
	code := func() (code int) {
		defer func() {
			if r := recover(); r != nil {
				b, ok := r.(badInput)
				if !ok {
					panic(r)
				}
				fmt.Fprintf(os.Stderr, "go-vectors: %s\n", b.msg)
				code = 2
			}
		}()
		run("pairing_phrase.json", pairing)
		for _, f := range []string{"xx_handshake_v0.json", "xx_handshake_v1.json",
			"xx_handshake_v2.json", "xx_handshake_default_negotiation.json"} {
			run(f, func(c *checker, doc node) { transcript(c, doc, nil) })
		}
		run("kk_handshake_v2.json", func(c *checker, doc node) {
			t := doc.key("transcript")
			transcript(c, t, nil)
			c.eq("sid_derivation.sid", doc.key("sid_derivation").key("sid").str(),
				t.key("sid").str())
		})
		run("transport_key_rotation.json", func(c *checker, doc node) {
			transcript(c, load(dir, "xx_handshake_v2.json"), func(client *mailbox.Machine) {
				rotation(c, doc, client)
			})
		})
		run("gbn_packets.json", packets)
		return 0
	}()
	if code != 0 {
		os.Exit(code)
	}
	n, bad := 0, 0
	for _, c := range all {
		n += c.n
		bad += len(c.bad)
		for _, b := range c.bad {
			fmt.Println("MISMATCH " + b)
		}
	}
	fmt.Printf("%d values compared with upstream, %d differ\n", n, bad)
	if bad > 0 {
		os.Exit(1)
	}
}

func words(n node) [mailbox.NumPassphraseWords]string {
	var w [mailbox.NumPassphraseWords]string
	l := n.list()
	if len(l) != len(w) {
		fail("%s: %d words", n.path, len(l))
	}
	for i, x := range l {
		w[i] = x.str()
	}
	return w
}

func pairing(c *checker, doc node) {
	for _, cs := range doc.key("cases").list() {
		p := cs.path
		var entropy [mailbox.NumPassphraseEntropyBytes]byte
		if cs.has("input_entropy") {
			copy(entropy[:], cs.key("input_entropy").hex())
			w, err := mailbox.PassphraseEntropyToMnemonic(entropy)
			if err != nil {
				fail("%s: %v", p, err)
			}
			c.eq(p+".phrase", cs.key("phrase").str(), strings.Join(w[:], " "))
			c.eq(p+".words", cs.key("words").canon(), mustJSON(w))
		}
		w := words(cs.key("words"))
		entropy = mailbox.PassphraseMnemonicToEntropy(w)
		c.eq(p+".entropy", cs.key("entropy").str(), hex.EncodeToString(entropy[:]))
		idx := make([]int, len(w))
		for i, word := range w {
			idx[i] = int(aezeed.ReverseWordMap[word])
		}
		c.eq(p+".word_indices", cs.key("word_indices").canon(), mustJSON(idx))
		sid, err := mailbox.NewConnData(nil, nil, entropy[:], nil, nil, nil).SID()
		if err != nil {
			fail("%s: %v", p, err)
		}
		streamIDs(c, cs, sid)
	}
}

func streamIDs(c *checker, doc node, sid [64]byte) {
	c.eq(doc.path+".sid", doc.key("sid").str(), hex.EncodeToString(sid[:]))
	s2c, c2s := mailbox.GetSID(sid, true), mailbox.GetSID(sid, false)
	c.eq(doc.path+".stream_id_server_to_client", doc.key("stream_id_server_to_client").str(),
		hex.EncodeToString(s2c[:]))
	c.eq(doc.path+".stream_id_client_to_server", doc.key("stream_id_client_to_server").str(),
		hex.EncodeToString(c2s[:]))
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// side is one party of a recorded handshake.
type side struct {
	static, ephemeral *btcec.PrivateKey
	min, max          byte
}

func readSide(n node) side {
	static, _ := btcec.PrivKeyFromBytes(n.key("static_priv").hex())
	eph, _ := btcec.PrivKeyFromBytes(n.key("ephemeral_priv").hex())
	return side{static, eph, byte(n.key("min_handshake_version").num()),
		byte(n.key("max_handshake_version").num())}
}

// recorder keeps every Write on a connection as one entry: upstream writes each handshake
// act with one Write.
type recorder struct {
	net.Conn
	who  string
	mu   *sync.Mutex
	acts *[]act
}

type act struct {
	who   string
	bytes []byte
}

func (r recorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	*r.acts = append(*r.acts, act{r.who, bytes.Clone(b)})
	r.mu.Unlock()
	return r.Conn.Write(b)
}

// transcript replays one handshake and its transport records; then, if given, hands the
// client's machine on (the key rotation file continues the v2 session).
func transcript(c *checker, doc node, then func(client *mailbox.Machine)) {
	cl, sv := readSide(doc.key("client_initiator")), readSide(doc.key("server_responder"))
	authData := doc.key("auth_data").hex()
	kk := doc.key("pattern").str() == "KK"

	var clientData, serverData *mailbox.ConnData
	if kk {
		clientData = mailbox.NewConnData(&keychain.PrivKeyECDH{PrivKey: cl.static},
			sv.static.PubKey(), nil, nil, nil, nil)
		serverData = mailbox.NewConnData(&keychain.PrivKeyECDH{PrivKey: sv.static},
			cl.static.PubKey(), nil, authData, nil, nil)
	} else {
		entropy := doc.key("passphrase_entropy").hex()
		clientData = mailbox.NewConnData(&keychain.PrivKeyECDH{PrivKey: cl.static},
			nil, entropy, nil, nil, nil)
		serverData = mailbox.NewConnData(&keychain.PrivKeyECDH{PrivKey: sv.static},
			nil, entropy, authData, nil, nil)
	}
	sid, err := clientData.SID()
	if err != nil {
		fail("%s: %v", doc.path, err)
	}
	streamIDs(c, doc, sid)

	machine := func(d *mailbox.ConnData, s side, initiator bool) *mailbox.Machine {
		m, err := mailbox.NewBrontideMachine(&mailbox.BrontideMachineConfig{
			ConnData:            d,
			Initiator:           initiator,
			HandshakePattern:    d.HandshakePattern(),
			MinHandshakeVersion: s.min,
			MaxHandshakeVersion: s.max,
			EphemeralGen:        func() (*btcec.PrivateKey, error) { return s.ephemeral, nil },
		})
		if err != nil {
			fail("%s: %v", doc.path, err)
		}
		return m
	}
	client, server := machine(clientData, cl, true), machine(serverData, sv, false)

	var mu sync.Mutex
	var acts []act
	cConn, sConn := net.Pipe()
	serverErr := make(chan error, 1)
	go func() {
		serverErr <- server.DoHandshake(recorder{sConn, "server", &mu, &acts})
	}()
	clientErr := client.DoHandshake(recorder{cConn, "client", &mu, &acts})
	if clientErr != nil {
		// Unblock the server before reporting.
		_ = cConn.Close()
	}
	if err := errors.Join(clientErr, <-serverErr); err != nil {
		c.eq(doc.path+" handshake", "completes", "fails: "+err.Error())
		return
	}
	_ = cConn.Close()

	fileActs := doc.key("acts").list()
	c.eq(doc.path+".acts (count)", strconv.Itoa(len(fileActs)), strconv.Itoa(len(acts)))
	for i, a := range fileActs {
		if i >= len(acts) {
			break
		}
		c.eq(a.path+".sender", a.key("sender").str(), acts[i].who)
		c.eq(a.path+".bytes", a.key("bytes").str(), hex.EncodeToString(acts[i].bytes))
		c.eq(a.path+".len", strconv.Itoa(a.key("len").num()), strconv.Itoa(len(acts[i].bytes)))
		c.eq(a.path+".version_byte", strconv.Itoa(a.key("version_byte").num()),
			strconv.Itoa(int(acts[i].bytes[0])))
	}
	if doc.has("client_masked_ephemeral") && len(acts) > 0 && len(acts[0].bytes) >= 34 {
		c.eq(doc.path+".client_masked_ephemeral", doc.key("client_masked_ephemeral").str(),
			hex.EncodeToString(acts[0].bytes[1:34]))
	}
	c.eq(doc.path+".negotiated_version", strconv.Itoa(doc.key("negotiated_version").num()),
		strconv.Itoa(int(acts[len(acts)-1].bytes[0])))
	c.eq(doc.path+".auth_data_received_by_client", doc.key("auth_data_received_by_client").str(),
		hex.EncodeToString(clientData.AuthData()))
	// Upstream hands the learned static to ConnData from handshake version 2 on only.
	for _, learned := range []struct {
		side string
		data *mailbox.ConnData
	}{{"client_initiator", clientData}, {"server_responder", serverData}} {
		if k := learned.data.RemoteKey(); k != nil {
			c.eq(doc.path+"."+learned.side+".remote_static_learned",
				doc.key(learned.side).key("remote_static_learned").str(),
				hex.EncodeToString(k.SerializeCompressed()))
		}
	}

	for _, t := range doc.key("transport").list() {
		from, to := client, server
		if t.key("direction").str() == "server_to_client" {
			from, to = server, client
		}
		record(c, t, from, to)
	}
	if then != nil {
		then(client)
	}
}

// record writes one transport message with upstream's machine (header and body are two
// Writes) and has the other side read it back.
func record(c *checker, t node, from, to *mailbox.Machine) {
	plaintext := t.key("plaintext").hex()
	if err := from.WriteMessage(plaintext); err != nil {
		fail("%s: %v", t.path, err)
	}
	var w writes
	if _, err := from.Flush(&w); err != nil {
		fail("%s: %v", t.path, err)
	}
	if len(w) != 2 {
		c.eq(t.path+" writes", "2", strconv.Itoa(len(w)))
		return
	}
	if t.has("header_ct") {
		c.eq(t.path+".header_ct", t.key("header_ct").str(), hex.EncodeToString(w[0]))
		c.eq(t.path+".body_ct", t.key("body_ct").str(), hex.EncodeToString(w[1]))
	}
	wire := append(bytes.Clone(w[0]), w[1]...)
	c.eq(t.path+".wire", t.key("wire").str(), hex.EncodeToString(wire))
	got, err := to.ReadMessage(bytes.NewReader(wire))
	if err != nil {
		got = []byte("decrypt error: " + err.Error())
	}
	c.eq(t.path+" (decrypted by the peer)", hex.EncodeToString(plaintext), hex.EncodeToString(got))
}

type writes [][]byte

func (w *writes) Write(b []byte) (int, error) {
	*w = append(*w, bytes.Clone(b))
	return len(b), nil
}

// rotation continues the client's records after the transcript's three; the file lists a
// selection, each plaintext "rotation message <index>" (checked).
func rotation(c *checker, doc node, client *mailbox.Machine) {
	want := map[int]node{}
	last := 0
	for _, m := range doc.key("messages").list() {
		i := m.key("index").num()
		want[i] = m
		if i > last {
			last = i
		}
	}
	// The server's machine is not needed: decryption is checked in the transcript.
	for i := 3; i <= last; i++ {
		plaintext := []byte(fmt.Sprintf("rotation message %d", i))
		if err := client.WriteMessage(plaintext); err != nil {
			fail("rotation %d: %v", i, err)
		}
		var w writes
		if _, err := client.Flush(&w); err != nil {
			fail("rotation %d: %v", i, err)
		}
		m, ok := want[i]
		if !ok {
			continue
		}
		c.eq(m.path+".plaintext", m.key("plaintext").str(), hex.EncodeToString(plaintext))
		c.eq(m.path+".wire", m.key("wire").str(), hex.EncodeToString(bytes.Join(w, nil)))
	}
}

func packets(c *checker, doc node) {
	types := doc.key("type_bytes")
	for name, want := range map[string]byte{"SYN": gbn.SYN, "DATA": gbn.DATA, "ACK": gbn.ACK,
		"NACK": gbn.NACK, "FIN": gbn.FIN, "SYNACK": gbn.SYNACK} {
		c.eq(types.path+"."+name, strconv.Itoa(types.key(name).num()), strconv.Itoa(int(want)))
	}
	for _, cs := range doc.key("cases").list() {
		f := cs.key("fields")
		var msg gbn.Message
		switch t := cs.key("type").str(); t {
		case "SYN":
			msg = &gbn.PacketSYN{N: uint8(f.key("N").num())}
		case "SYNACK":
			msg = &gbn.PacketSYNACK{}
		case "DATA":
			msg = &gbn.PacketData{Seq: uint8(f.key("seq").num()),
				FinalChunk: f.key("final_chunk").boolean(), IsPing: f.key("is_ping").boolean(),
				Payload: f.key("payload").hex()}
		case "ACK":
			msg = &gbn.PacketACK{Seq: uint8(f.key("seq").num())}
		case "NACK":
			msg = &gbn.PacketNACK{Seq: uint8(f.key("seq").num())}
		case "FIN":
			msg = &gbn.PacketFIN{}
		default:
			fail("%s: unknown type %q", cs.path, t)
		}
		enc, err := msg.Serialize()
		if err != nil {
			fail("%s: %v", cs.path, err)
		}
		c.eq(cs.path+".encoded", cs.key("encoded").str(), hex.EncodeToString(enc))
		back, err := gbn.Deserialize(enc)
		ok := err == nil
		if ok {
			again, err := back.Serialize()
			ok = err == nil && bytes.Equal(again, enc)
		}
		c.eq(cs.path+".deserialize_roundtrip_ok",
			strconv.FormatBool(cs.key("deserialize_roundtrip_ok").boolean()), strconv.FormatBool(ok))
	}
	for _, e := range doc.key("deserialize_edge").list() {
		c.eq(e.path+".result", e.key("result").str(), deserialize(e.key("input").hex()))
	}
}

// deserialize describes what upstream's Deserialize does with b, panics included.
func deserialize(b []byte) (out string) {
	defer func() {
		if r := recover(); r != nil {
			out = fmt.Sprintf("PANIC: %v", r)
		}
	}()
	msg, err := gbn.Deserialize(b)
	if err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprintf("%T %+v", msg, msg)
}
