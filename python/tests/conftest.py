"""The real stack for the Python tests, every part a process of the `lnc` binary, as
crates/lnc-testkit/src/stack.rs starts it for the Rust tests: `lnc mailbox --insecure`
(the relay), `lnc lnd-sim` (LND's stand-in), `lnc node` beside it, and sessions made with
`lnc session add --json`. Ports are the OS's (127.0.0.1:0, read back from each process's
readiness line); every wait is on an event (a line, a process exit) with a generous timeout,
never a fixed sleep.

The binary: $LNC_BIN, else $CARGO_TARGET_DIR/debug/lnc, else ~/.cache/lnc-rs/target/debug/lnc
(what .ci/run builds).
"""

from __future__ import annotations

import json
import os
import pathlib
import queue
import re
import subprocess
import tempfile
import threading
import time
import urllib.request
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pytest

#: Timeout for anything a test waits on: generous, CI is 2 loaded cores.
T = 120.0

PASSWORD = "correct horse battery staple"


def lnc_bin() -> str:
    candidates = []
    if os.environ.get("LNC_BIN"):
        candidates.append(os.environ["LNC_BIN"])
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(os.path.join(os.environ["CARGO_TARGET_DIR"], "debug", "lnc"))
    candidates.append(os.path.expanduser("~/.cache/lnc-rs/target/debug/lnc"))
    for c in candidates:
        if os.access(c, os.X_OK):
            return c
    raise RuntimeError(
        f"no lnc binary (tried {candidates}): build it with `cargo build -p lnc` and set LNC_BIN"
    )


class Proc:
    """A child process whose output lines (stdout and stderr together) are events."""

    def __init__(self, name: str, args: List[str], env: Optional[Dict[str, str]] = None) -> None:
        self.name = name
        e = dict(os.environ)
        e.update({"NO_COLOR": "1", "LNC_LOG": "info"})
        if env:
            e.update(env)
        self.p = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=e,
            text=True,
            errors="replace",
        )
        self.lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self.log: List[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            line = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line.rstrip("\n"))
            self.log.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_line(self, pred: Callable[[str], bool], timeout: float = T) -> str:
        """The next line matching `pred` (earlier lines are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name}: no matching line in {timeout}s:\n" + self.tail())
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"{self.name} exited ({self.p.wait()}):\n" + self.tail())
            if pred(line):
                return line

    def tail(self, n: int = 40) -> str:
        return "\n".join("    " + l for l in self.log[-n:])

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=T)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def word_after(line: str, key: str) -> str:
    return line.split(key, 1)[1].split()[0]


class Stack:
    """Relay + lnd-sim + node, started once for the whole test session."""

    def __init__(self, lnc: str, root: pathlib.Path, tls: bool = False) -> None:
        """`tls`: the relay serves TLS with the self-signed certificate it generates
        (`ca_cert`), which the node trusts as its CA; else plaintext (`--insecure`)."""
        self.lnc = lnc
        self.dir = root
        self.procs: List[Proc] = []
        self.ca_cert = root / "mailbox" / "tls.cert"
        mailbox = self._spawn(
            "mailbox",
            [
                "mailbox",
                *([] if tls else ["--insecure"]),
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "off",
                "--data-dir",
                str(root / "mailbox"),
            ],
        )
        lnd_dir = root / "lnd"
        sim = self._spawn("lnd-sim", ["lnd-sim", "--data-dir", str(lnd_dir)])
        self.relay = word_after(mailbox.wait_line(lambda l: "mailbox listening" in l), "addr=")
        self.lnd_addr = sim.wait_line(lambda l: l.startswith("lnd-sim listening on")).rsplit(" ", 1)[-1]
        self.node_dir = root / "node"
        node = self._spawn(
            "node",
            [
                "node",
                "--lnd-addr",
                self.lnd_addr,
                "--lnd-tls-cert",
                str(lnd_dir / "tls.cert"),
                "--lnd-macaroon",
                str(lnd_dir / "admin.macaroon"),
                "--data-dir",
                str(self.node_dir),
                "--mailbox",
                self.relay,
                "--mailbox-tls",
                *(["ca", "--mailbox-ca", str(self.ca_cert)] if tls else ["insecure"]),
                "--admin-listen",
                "127.0.0.1:0",
                "--handshake-timeout-secs",
                "3",
                "--metrics-listen",
                "127.0.0.1:0",
            ],
        )
        line = node.wait_line(lambda l: l.startswith("lnc node metrics:"))
        self.node_metrics = line.split("lnc node metrics:", 1)[1].strip()
        node.wait_line(lambda l: l.startswith("lnc node ready"))

    def _spawn(self, name: str, args: List[str]) -> Proc:
        p = Proc(name, [self.lnc, *args])
        self.procs.append(p)
        return p

    def session(self, *args: str) -> dict:
        """`lnc session ARGS --json` against the node."""
        out = subprocess.run(
            [self.lnc, "session", *args, "--json", "--data-dir", str(self.node_dir)],
            capture_output=True,
            text=True,
            timeout=T,
            env={**os.environ, "NO_COLOR": "1"},
        )
        if out.returncode != 0:
            raise RuntimeError(f"lnc session {' '.join(args)}: {out.stderr}")
        result: dict = json.loads(out.stdout)
        return result

    def add(self, *args: str) -> Tuple[str, str]:
        """A new session: (id, phrase)."""
        v = self.session("add", "--no-qr", *args)
        return v["session"]["id"], v["phrase"]

    def calls_in_flight(self) -> int:
        """The node's gauge of proxied calls and streams not yet finished."""
        with urllib.request.urlopen(self.node_metrics, timeout=T) as r:
            text = r.read().decode()
        return sum(
            int(float(m.group(1)))
            for m in re.finditer(r"^\S*calls_in_flight(?:\{[^}]*\})? (\S+)$", text, re.M)
        )

    def wait_in_flight(self, n: int) -> None:
        """Waits until the node has `n` calls in flight (polling its metrics: the event)."""
        deadline = time.monotonic() + T
        while (now := self.calls_in_flight()) != n:
            assert time.monotonic() < deadline, f"{now} calls in flight on the node, not {n}"
            time.sleep(0.05)

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()


@pytest.fixture(scope="session")
def lnc() -> str:
    return lnc_bin()


@pytest.fixture(scope="session")
def stack(lnc: str) -> Iterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="lnc-py-") as d:
        s = Stack(lnc, pathlib.Path(d))
        try:
            yield s
        finally:
            s.stop()


@pytest.fixture(scope="session")
def tls_stack(lnc: str) -> Iterator[Stack]:
    """A second stack whose relay speaks TLS with a self-signed certificate."""
    with tempfile.TemporaryDirectory(prefix="lnc-py-tls-") as d:
        s = Stack(lnc, pathlib.Path(d), tls=True)
        try:
            yield s
        finally:
            s.stop()


@pytest.fixture
def home(tmp_path: pathlib.Path) -> pathlib.Path:
    """An lnc data dir of the test's own (profiles go to home/profiles)."""
    return tmp_path / "lnc-home"


@pytest.fixture
def admin_session(stack: Stack) -> Tuple[str, str]:
    return stack.add("--type", "admin")
