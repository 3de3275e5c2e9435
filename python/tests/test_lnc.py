"""The Python package against the real stack (conftest.py): pairing, unary calls, streams,
KK from a saved profile in a new process, every error class we can provoke, asyncio
concurrency, and Ctrl-C."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from typing import Iterator, Tuple

import pytest

import lnc
from conftest import PASSWORD, T, Proc, Stack

GETINFO = "lnrpc.Lightning.GetInfo"
ADD = "lnrpc.Lightning.AddInvoice"
SUB = "lnrpc.Lightning.SubscribeInvoices"


def pair(stack: Stack, phrase: str, home: pathlib.Path, profile: str = "mynode") -> lnc.Client:
    return lnc.pair(
        phrase, mailbox=stack.relay, insecure=True, password=PASSWORD, profile=profile, home=home
    )


@pytest.fixture(scope="module")
def paired(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Tuple[pathlib.Path, str]:
    """A profile paired once for the module's KK tests: (home, profile name)."""
    home = tmp_path_factory.mktemp("paired")
    _, phrase = stack.add("--type", "admin")
    pair(stack, phrase, home, "shared").close()
    return home, "shared"


@pytest.fixture
def client(paired: Tuple[pathlib.Path, str]) -> Iterator[lnc.Client]:
    home, profile = paired
    with lnc.connect(profile, password=PASSWORD, home=home) as c:
        yield c


def run_python(code: str, env: dict) -> subprocess.CompletedProcess:
    """`code` in a new interpreter (a later run of the user's program)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=T,
        env={**os.environ, **env},
    )


# --- the happy path -------------------------------------------------------------------


def test_pair_call_stream_then_kk_in_new_processes(
    stack: Stack, home: pathlib.Path, admin_session: Tuple[str, str]
) -> None:
    sid, phrase = admin_session
    with pair(stack, phrase, home) as c:
        info = c.call(GETINFO, {})
        # The node records the pairing on its side of the handshake: wait for it.
        deadline = time.monotonic() + T
        while stack.session("show", sid)["session"]["paired"] is not True:
            assert time.monotonic() < deadline, "the node never recorded the pairing"
            time.sleep(0.05)
        assert len(info["identity_pubkey"]) == 66
        assert c.is_connected and c.status == "Connected"
        assert c.mailbox == stack.relay
        assert len(c.node_pubkey) == 66

        # A stream: the backlog after a marker invoice, then a live one. (LND reads
        # add_index 0 as "no backlog", so the marker's index, >= 1, is where it starts.)
        mark = c.call(ADD, {"memo": "mark", "value": 1})
        c.call(ADD, {"memo": "py-1", "value": 1000})
        with c.subscribe(SUB, {"add_index": mark["add_index"]}) as sub:
            assert next(sub)["memo"] == "py-1"
            c.call(ADD, {"memo": "py-2", "value": "2000"})
            inv = next(sub)
            assert inv["memo"] == "py-2" and inv["value"] == "2000"
        # Closed: the iterator ends.
        with pytest.raises(StopIteration):
            next(sub)
        assert c.call(GETINFO)["identity_pubkey"] == info["identity_pubkey"]

    # The profile is the CLI's: one file, sealed with the password.
    assert lnc.profiles(home) == ["mynode"]
    sealed = json.loads((home / "profiles" / "mynode.json").read_text())
    assert sealed["format"] == "lnc-credentials"
    # (Whole secrets only: a short word of the phrase can occur in hex or base64 by chance.)
    assert PASSWORD not in json.dumps(sealed) and phrase not in json.dumps(sealed)

    # A later run: a new interpreter with only the profile and its password (KK).
    out = run_python(
        f"""
        import lnc
        with lnc.connect("mynode", password={PASSWORD!r}, home={str(home)!r}) as c:
            print(c.call("{GETINFO}")["identity_pubkey"])
        """,
        {},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == info["identity_pubkey"]

    # The same file through LNC_HOME, by the CLI.
    out = subprocess.run(
        [stack.lnc, "call", GETINFO, "--profile", "mynode", "--compact"],
        capture_output=True,
        text=True,
        timeout=T,
        env={**os.environ, "LNC_HOME": str(home), "LNC_PASSWORD": PASSWORD, "LNC_LOG": "warn"},
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["identity_pubkey"] == info["identity_pubkey"]


def test_profile_paired_by_the_cli_connects_from_python(
    stack: Stack, home: pathlib.Path, admin_session: Tuple[str, str]
) -> None:
    _, phrase = admin_session
    env = {**os.environ, "LNC_HOME": str(home), "LNC_PASSWORD": PASSWORD, "LNC_LOG": "warn"}
    out = subprocess.run(
        [stack.lnc, "connect", "--mailbox", stack.relay, "--insecure", "--profile", "cli"],
        input=phrase + "\n",
        capture_output=True,
        text=True,
        timeout=T,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    # LNC_HOME, no home= keyword.
    out = run_python(
        f"""
        import lnc
        with lnc.connect("cli", password={PASSWORD!r}) as c:
            print(c.call("{GETINFO}")["identity_pubkey"])
        """,
        {"LNC_HOME": str(home)},
    )
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.strip()) == 66


def test_gil_is_released_while_a_stream_waits(client: lnc.Client) -> None:
    """A thread blocked on a stream must not stop the main thread's calls: if the GIL were
    held while waiting, the invoice that ends the wait could never be added."""
    got: list = []
    first = client.call(ADD, {"memo": "gil-0", "value": 1})
    sub = client.subscribe(SUB, {"add_index": int(first["add_index"])})

    def reader() -> None:
        got.append(next(sub))

    t = threading.Thread(target=reader)
    t.start()
    client.call(ADD, {"memo": "gil-1", "value": 1})
    t.join(T)
    assert not t.is_alive()
    assert got[0]["memo"] == "gil-1"
    sub.close()


def test_one_client_from_many_threads(client: lnc.Client) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(16) as pool:
        infos = list(pool.map(lambda _: client.call(GETINFO), range(64)))
    assert len({i["identity_pubkey"] for i in infos}) == 1


def test_closed_or_collected_subscription_stops_on_the_node(
    stack: Stack, client: lnc.Client
) -> None:
    stack.wait_in_flight(0)
    sub = client.subscribe(SUB, {})
    stack.wait_in_flight(1)
    sub.close()
    stack.wait_in_flight(0)

    sub = client.subscribe(SUB, {})
    stack.wait_in_flight(1)
    del sub
    gc.collect()
    stack.wait_in_flight(0)

    # The tunnel is unharmed by the streams' resets.
    assert "identity_pubkey" in client.call(GETINFO)


def test_a_stream_keeps_its_tunnel_after_the_client_is_gone(
    stack: Stack, home: pathlib.Path, admin_session: Tuple[str, str]
) -> None:
    """`for inv in lnc.connect(...).subscribe(...)`: the client object is collected at once."""
    _, phrase = admin_session
    c = pair(stack, phrase, home)
    mark = c.call(ADD, {"memo": "mark", "value": 1})
    c.call(ADD, {"memo": "kept", "value": 1})
    sub = c.subscribe(SUB, {"add_index": mark["add_index"]})
    del c
    gc.collect()
    assert next(sub)["memo"] == "kept"
    sub.close()


def test_websocket_transport(stack: Stack, home: pathlib.Path) -> None:
    _, phrase = stack.add("--type", "admin")
    with lnc.pair(
        phrase, mailbox=stack.relay, insecure=True, transport="ws", password=PASSWORD, home=home
    ) as c:
        assert "identity_pubkey" in c.call(GETINFO)
    with lnc.connect("default", password=PASSWORD, home=home) as c:  # KK, ws from the profile
        assert "identity_pubkey" in c.call(GETINFO)


def test_tls_relay_with_its_ca_then_kk(tls_stack: Stack, home: pathlib.Path) -> None:
    _, phrase = tls_stack.add("--type", "admin")
    with lnc.pair(
        phrase, mailbox=tls_stack.relay, ca=tls_stack.ca_cert, password=PASSWORD, home=home
    ) as c:
        assert "identity_pubkey" in c.call(GETINFO)
    # The CA is part of the profile: a later run needs only the password.
    with lnc.connect("default", password=PASSWORD, home=home) as c:
        assert "identity_pubkey" in c.call(GETINFO)


def test_tls_relay_skip_verify(tls_stack: Stack, home: pathlib.Path) -> None:
    _, phrase = tls_stack.add("--type", "readonly")
    with lnc.pair(
        phrase, mailbox=tls_stack.relay, skip_verify=True, password=PASSWORD, home=home
    ) as c:
        assert "identity_pubkey" in c.call(GETINFO)


def test_tls_self_signed_relay_with_system_roots(tls_stack: Stack, home: pathlib.Path) -> None:
    _, phrase = tls_stack.add("--type", "readonly")
    with pytest.raises(lnc.TlsError) as e:
        lnc.pair(phrase, mailbox=tls_stack.relay, password=PASSWORD, home=home, wait=30)
    assert 'ca="ca.pem"' in str(e.value)
    with pytest.raises(lnc.LncError, match="exclude each other"):
        lnc.pair(phrase, mailbox=tls_stack.relay, password=PASSWORD, insecure=True, skip_verify=True)


# --- asyncio --------------------------------------------------------------------------


def test_asyncio_100_concurrent_calls_and_a_stream(paired: Tuple[pathlib.Path, str]) -> None:
    home, profile = paired

    async def main() -> None:
        async with await lnc.aconnect(profile, password=PASSWORD, home=home) as c:
            infos = await asyncio.gather(*(c.call(GETINFO) for _ in range(100)))
            assert len({i["identity_pubkey"] for i in infos}) == 1
            memos = await asyncio.gather(
                *(c.call(ADD, {"memo": f"a{i}", "value": i + 1}) for i in range(100))
            )
            assert len({m["add_index"] for m in memos}) == 100

            mark = await c.call(ADD, {"memo": "mark", "value": 5})
            await c.call(ADD, {"memo": "async-1", "value": 5})
            got = []
            async with c.subscribe(SUB, {"add_index": mark["add_index"]}) as sub:
                async for inv in sub:
                    got.append(inv["memo"])
                    if len(got) == 1:
                        await c.call(ADD, {"memo": "async-2", "value": 6})
                    else:
                        break
            assert got == ["async-1", "async-2"]

            # A cancelled call does not break the client.
            s = c.subscribe(SUB, {})
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(s.__anext__(), 0.2)
            await s.aclose()
            assert "identity_pubkey" in await c.call(GETINFO)

            with pytest.raises(lnc.RpcError) as e:
                await c.call("lnrpc.Lightning.LookupInvoice", {"r_hash_str": "00" * 32})
            assert e.value.code == lnc.StatusCode.NOT_FOUND

    asyncio.run(main())


def test_asyncio_pair(stack: Stack, home: pathlib.Path, admin_session: Tuple[str, str]) -> None:
    _, phrase = admin_session

    async def main() -> str:
        c = await lnc.apair(
            phrase, mailbox=stack.relay, insecure=True, password=PASSWORD, profile="a", home=home
        )
        async with c:
            return (await c.call(GETINFO))["identity_pubkey"]

    assert len(asyncio.run(main())) == 66
    assert lnc.profiles(home) == ["a"]


# --- errors ---------------------------------------------------------------------------


def test_wrong_password(paired: Tuple[pathlib.Path, str]) -> None:
    home, profile = paired
    with pytest.raises(lnc.WrongPasswordError) as e:
        lnc.connect(profile, password="not the password", home=home)
    assert "not the password" not in str(e.value) and "wrong password" in str(e.value)
    assert isinstance(e.value, lnc.LncError)


def test_unknown_profile_and_bad_name(home: pathlib.Path) -> None:
    with pytest.raises(lnc.ProfileNotFoundError) as e:
        lnc.connect("nope", password=PASSWORD, home=home)
    assert "lnc.pair" in str(e.value)
    with pytest.raises(lnc.ProfileError):
        lnc.connect("../etc/passwd", password=PASSWORD, home=home)
    with pytest.raises(lnc.ProfileError):
        lnc.connect("nope", password="", home=home)


def test_wrong_phrase_is_session_not_found(stack: Stack, home: pathlib.Path) -> None:
    # Ten valid words no session uses (a fresh session's phrase, then revoked before use,
    # would be the same case; a random one is simpler).
    _, phrase = stack.add("--type", "readonly")
    words = phrase.split()
    words[0], words[1] = words[1], words[0]
    if words == phrase.split():
        words[0] = "abandon" if words[0] != "abandon" else "ability"
    wrong = " ".join(words)
    with pytest.raises(lnc.SessionNotFoundError) as e:
        lnc.pair(
            wrong, mailbox=stack.relay, insecure=True, password=PASSWORD, home=home, wait=3
        )
    # Not the phrase, nor any two of its words (one word alone may be an English word of
    # the message: the list has "session", "wrong", "make"...).
    for i in range(len(words) - 1):
        assert " ".join(words[i : i + 2]) not in str(e.value)
    assert lnc.profiles(home) == []


def test_invalid_phrase(stack: Stack, home: pathlib.Path) -> None:
    with pytest.raises(lnc.PhraseError) as e:
        lnc.pair("only three words", mailbox=stack.relay, insecure=True, password=PASSWORD, home=home)
    assert "only" not in str(e.value)
    with pytest.raises(lnc.PhraseError) as e:
        lnc.pair(
            "abandon " * 9 + "zzzqqq", mailbox=stack.relay, insecure=True, password=PASSWORD, home=home
        )
    assert "zzzqqq" not in str(e.value) and "word 10" in str(e.value)


def test_expired_phrase(stack: Stack, home: pathlib.Path) -> None:
    """A phrase not used within its first-connection window: the node revokes the session."""
    sid, phrase = stack.add("--type", "readonly", "--first-connection-timeout", "1s")
    deadline = time.monotonic() + T
    while stack.session("show", sid)["session"]["state"] != "revoked":
        assert time.monotonic() < deadline, "the node did not end the unpaired session"
        time.sleep(0.1)  # polling the node's state: the event this test waits on
    with pytest.raises(lnc.SessionNotFoundError):
        lnc.pair(phrase, mailbox=stack.relay, insecure=True, password=PASSWORD, home=home, wait=3)
    assert lnc.profiles(home) == []


def test_revoked_session(stack: Stack, home: pathlib.Path) -> None:
    sid, phrase = stack.add("--type", "admin")
    pair(stack, phrase, home).close()
    stack.session("revoke", sid)
    with pytest.raises(lnc.SessionNotFoundError):
        lnc.connect("mynode", password=PASSWORD, home=home, wait=3)


def test_expired_session(stack: Stack, home: pathlib.Path) -> None:
    _, phrase = stack.add("--type", "admin", "--expiry", "15s")
    with pair(stack, phrase, home) as c:
        expiry = c.expiry
    assert expiry is not None
    # Waiting for the clock to pass the expiry is waiting on the event itself.
    while time.time() <= expiry:
        time.sleep(min(0.5, max(0.0, expiry - time.time() + 0.01)))
    with pytest.raises(lnc.SessionExpiredError) as e:
        lnc.connect("mynode", password=PASSWORD, home=home)
    assert e.value.expiry == expiry and "pair again" in str(e.value)


def test_session_in_use(paired: Tuple[pathlib.Path, str]) -> None:
    home, profile = paired
    with lnc.connect(profile, password=PASSWORD, home=home):
        with pytest.raises(lnc.SessionInUseError):
            lnc.connect(profile, password=PASSWORD, home=home, wait=5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_relay_unreachable(stack: Stack, home: pathlib.Path) -> None:
    _, phrase = stack.add("--type", "readonly")
    with pytest.raises(lnc.MailboxUnreachableError) as e:
        lnc.pair(
            phrase,
            mailbox=f"127.0.0.1:{free_port()}",
            insecure=True,
            password=PASSWORD,
            home=home,
            wait=3,
        )
    assert "check the address" in str(e.value)


def test_tls_to_a_plaintext_relay(stack: Stack, home: pathlib.Path) -> None:
    _, phrase = stack.add("--type", "readonly")
    with pytest.raises(lnc.TlsError) as e:
        lnc.pair(phrase, mailbox=stack.relay, password=PASSWORD, home=home, wait=30)
    assert "insecure=True" in str(e.value)


def test_rpc_and_method_errors(client: lnc.Client) -> None:
    with pytest.raises(lnc.RpcError) as e:
        client.call("lnrpc.Lightning.LookupInvoice", {"r_hash_str": "00" * 32})
    assert e.value.code == lnc.StatusCode.NOT_FOUND
    assert e.value.details == "unable to locate invoice"
    assert "unable to locate invoice" in str(e.value)
    with pytest.raises(lnc.MethodError):
        client.call("lnrpc.Lightning.NoSuchMethod")
    with pytest.raises(lnc.MethodError, match="use subscribe"):
        client.call(SUB)
    with pytest.raises(lnc.MethodError, match="use call"):
        client.subscribe(GETINFO)
    with pytest.raises(lnc.MethodError):
        client.call(GETINFO, {"no_such_field": 1})


def test_permission_denied_is_an_rpc_error(stack: Stack, home: pathlib.Path) -> None:
    _, phrase = stack.add("--type", "readonly")
    with pair(stack, phrase, home) as c:
        with pytest.raises(lnc.RpcError) as e:
            c.call(ADD, {"memo": "ro", "value": 1})
    # What LND itself answers (grpc-go's default code for its macaroon errors).
    assert e.value.code == lnc.StatusCode.UNKNOWN and "permission denied" in str(e.value)


def test_closed_client(paired: Tuple[pathlib.Path, str]) -> None:
    home, profile = paired
    c = lnc.connect(profile, password=PASSWORD, home=home)
    c.close()
    with pytest.raises(lnc.ClientClosedError):
        c.call(GETINFO)


# --- Ctrl-C ---------------------------------------------------------------------------


def test_ctrl_c_during_a_stream(paired: Tuple[pathlib.Path, str]) -> None:
    home, profile = paired
    script = textwrap.dedent(
        f"""
        import lnc, sys, time
        c = lnc.connect({profile!r}, password={PASSWORD!r}, home={str(home)!r})
        mark = c.call("{ADD}", {{"memo": "mark", "value": 1}})
        c.call("{ADD}", {{"memo": "ctrl-c", "value": 1}})
        sub = c.subscribe("{SUB}", {{"add_index": mark["add_index"]}})
        try:
            print("first", next(sub)["memo"], flush=True)
            for inv in sub:
                print("unexpected", inv, flush=True)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            c.close()
            sys.exit(0)
        sys.exit(3)
        """
    )
    p = Proc("ctrl-c", [sys.executable, "-u", "-c", script])
    try:
        p.wait_line(lambda l: l == "first ctrl-c")
        sent = time.monotonic()
        p.p.send_signal(signal.SIGINT)
        p.wait_line(lambda l: l == "interrupted")
        rc = p.p.wait(timeout=T)
        assert rc == 0, p.tail()
        # Promptly: the wait checks for signals every 0.1 s (generous bound for CI).
        assert time.monotonic() - sent < 10, p.tail()
    finally:
        p.stop()


def test_ctrl_c_during_a_blocking_connect(stack: Stack, home: pathlib.Path) -> None:
    """A call that would block for a minute (a relay that is not there, wait=60)."""
    _, phrase = stack.add("--type", "readonly")
    script = textwrap.dedent(
        f"""
        import lnc, sys
        try:
            print("connecting", flush=True)
            lnc.pair({phrase!r}, mailbox="127.0.0.1:{free_port()}", insecure=True,
                     password="pw", home={str(home)!r}, wait=60)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(0)
        sys.exit(3)
        """
    )
    p = Proc("ctrl-c", [sys.executable, "-u", "-c", script])
    try:
        p.wait_line(lambda l: l == "connecting")
        # Inside the native call once the module's runtime threads exist (the call starts
        # them): from then on only its signal checks can raise KeyboardInterrupt.
        deadline = time.monotonic() + T
        while len(os.listdir(f"/proc/{p.p.pid}/task")) < 2:
            assert time.monotonic() < deadline and p.p.poll() is None, p.tail()
            time.sleep(0.01)
        sent = time.monotonic()
        p.p.send_signal(signal.SIGINT)
        p.wait_line(lambda l: l == "interrupted")
        assert p.p.wait(timeout=T) == 0, p.tail()
        assert time.monotonic() - sent < 10, p.tail()
    finally:
        p.stop()


def test_a_refused_subscription_raises_at_the_first_message(
    stack: Stack, home: pathlib.Path
) -> None:
    """`subscribe` returns at once (LND answers some streams only with their first event);
    the node's refusal comes with the first `next`."""
    _, phrase = stack.add("--type", "custom", "--permission", "info:read")
    with pair(stack, phrase, home) as c:
        assert "identity_pubkey" in c.call(GETINFO)
        sub = c.subscribe(SUB, {})
        with pytest.raises(lnc.RpcError, match="permission denied"):
            next(sub)

        async def main() -> None:
            ac = lnc.AsyncClient(c._c)
            with pytest.raises(lnc.RpcError, match="permission denied"):
                async for _ in ac.subscribe(SUB):
                    pass

        asyncio.run(main())
