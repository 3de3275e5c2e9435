"""Lightning Node Connect for Python: talk to an LND node through an LNC mailbox relay.

Pair once with the node's ten-word phrase; the session is saved as a password-sealed
profile (the same files the ``lnc`` CLI writes, under ``$LNC_HOME/profiles`` or
``~/.lnc/profiles``). Later runs reconnect with the profile and its password alone::

    import lnc
    client = lnc.pair(phrase, mailbox="mailbox.terminal.lightning.today:443",
                      password=pw, profile="mynode")
    client = lnc.connect(profile="mynode", password=pw)
    info = client.call("lnrpc.Lightning.GetInfo")
    for inv in client.subscribe("lnrpc.Lightning.SubscribeInvoices"):
        ...

    async with await lnc.aconnect(profile="mynode", password=pw) as c:
        info = await c.call("lnrpc.Lightning.GetInfo")
        async for inv in c.subscribe("lnrpc.Lightning.SubscribeInvoices"):
            ...

Requests and responses are dicts in LND's JSON form (proto field names; 64-bit integers
are strings in responses, and may be given as int or str in requests). Blocking calls
release the GIL and raise ``KeyboardInterrupt`` promptly on Ctrl-C. Errors are subclasses
of :class:`LncError`.

Secrets: the phrase and the password are copied into memory that is wiped after use on
the Rust side; the ``str`` objects you pass cannot be wiped by this library.
"""

from __future__ import annotations

import json
import os
from typing import Any, AsyncIterator, Dict, Iterator, List, Mapping, Optional, Union

from . import _native
from ._errors import (
    ClientClosedError,
    ConnectionLostError,
    HandshakeError,
    LncError,
    MailboxUnreachableError,
    MethodError,
    PhraseError,
    ProfileError,
    ProfileNotFoundError,
    RpcError,
    SessionExpiredError,
    SessionInUseError,
    SessionNotFoundError,
    StatusCode,
    TlsError,
    WrongPasswordError,
)

__version__ = "0.1.0"

#: Seconds the first connection may wait for the node before giving up.
DEFAULT_WAIT = 30.0

PathLike = Union[str, "os.PathLike[str]"]
Request = Optional[Mapping[str, Any]]


def _dumps(request: Request) -> str:
    return json.dumps(dict(request) if request is not None else {})


def _home(home: Optional[PathLike]) -> Optional[str]:
    return os.fspath(home) if home is not None else None


def _path(p: Optional[PathLike]) -> Optional[str]:
    return os.fspath(p) if p is not None else None


class Subscription(Iterator[Dict[str, Any]]):
    """A server-streaming call: iterate for messages (dicts). ``close()``, leaving a
    ``with`` block, or dropping the last reference stops the call on the node."""

    def __init__(self, native: Any) -> None:
        self._s = native

    def __iter__(self) -> "Subscription":
        return self

    def __next__(self) -> Dict[str, Any]:
        item = self._s.next()
        if item is None:
            raise StopIteration
        result: Dict[str, Any] = json.loads(item)
        return result

    def close(self) -> None:
        self._s.close()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncSubscription(AsyncIterator[Dict[str, Any]]):
    """A server-streaming call for ``async for``; ``aclose()`` (or ``async with``, or
    dropping it) stops the call."""

    def __init__(self, native: Any) -> None:
        self._s = native

    def __aiter__(self) -> "AsyncSubscription":
        return self

    async def __anext__(self) -> Dict[str, Any]:
        item = await self._s.anext()
        if item is None:
            raise StopAsyncIteration
        result: Dict[str, Any] = json.loads(item)
        return result

    async def aclose(self) -> None:
        self._s.close()

    async def __aenter__(self) -> "AsyncSubscription":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._s.close()


class _Base:
    def __init__(self, native: Any) -> None:
        self._c = native

    @property
    def node_pubkey(self) -> str:
        """The node's static public key (hex)."""
        return str(self._c.node_pubkey)

    @property
    def expiry(self) -> Optional[int]:
        """When the session expires (Unix seconds), ``None`` if never."""
        e: Optional[int] = self._c.expiry
        return e

    @property
    def mailbox(self) -> str:
        """The relay's address."""
        return str(self._c.mailbox)

    @property
    def status(self) -> str:
        """Upstream's status string: "Connected", "Not Connected", "Session Not Found"…"""
        return str(self._c.status)

    @property
    def is_connected(self) -> bool:
        """Whether the tunnel is up right now (it reconnects by itself)."""
        return bool(self._c.is_connected)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} node={self.node_pubkey[:16]}… mailbox={self.mailbox}>"


class Client(_Base):
    """A connected session (blocking API). Use as a context manager, or call ``close()``."""

    def call(self, method: str, request: Request = None) -> Dict[str, Any]:
        """Calls a unary method by name (``"lnrpc.Lightning.GetInfo"``) with a dict."""
        result: Dict[str, Any] = json.loads(self._c.call(method, _dumps(request)))
        return result

    def subscribe(self, method: str, request: Request = None) -> Subscription:
        """Starts a server-streaming method; iterate the result for messages."""
        return Subscription(self._c.subscribe(method, _dumps(request)))

    def close(self) -> None:
        """Closes the tunnel; returns once the node has been told (at most ~0.5 s)."""
        self._c.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_Base):
    """A connected session for asyncio. ``async with`` closes it."""

    async def call(self, method: str, request: Request = None) -> Dict[str, Any]:
        """Calls a unary method by name with a dict."""
        text = await self._c.acall(method, _dumps(request))
        result: Dict[str, Any] = json.loads(text)
        return result

    def subscribe(self, method: str, request: Request = None) -> AsyncSubscription:
        """Starts a server-streaming method; ``async for`` over the result."""
        return AsyncSubscription(self._c.subscribe(method, _dumps(request)))

    async def close(self) -> None:
        """Closes the tunnel; returns once the node has been told (at most ~0.5 s)."""
        await self._c.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _pair_args(
    phrase: str,
    mailbox: str,
    password: str,
    profile: str,
    home: Optional[PathLike],
    insecure: bool,
    ca: Optional[PathLike],
    skip_verify: bool,
    transport: str,
    wait: float,
) -> tuple:  # type: ignore[type-arg]
    return (
        phrase,
        mailbox,
        password,
        profile,
        _home(home),
        bool(insecure),
        _path(ca),
        bool(skip_verify),
        transport,
        float(wait),
    )


def pair(
    phrase: str,
    *,
    mailbox: str,
    password: str,
    profile: str = "default",
    home: Optional[PathLike] = None,
    insecure: bool = False,
    ca: Optional[PathLike] = None,
    skip_verify: bool = False,
    transport: str = "grpc",
    wait: float = DEFAULT_WAIT,
) -> Client:
    """Pairs with a node using its ten-word phrase and saves profile ``profile`` sealed
    with ``password``. Returns the connected client.

    ``mailbox`` is the relay's ``host:port``. TLS to it uses the system's roots unless
    ``insecure=True`` (plaintext: a local test relay, like the CLI's ``--insecure``),
    ``ca="ca.pem"`` (a private CA) or ``skip_verify=True`` (development only).
    ``transport`` is ``"grpc"`` (default) or ``"ws"``. ``home`` overrides ``$LNC_HOME``.
    """
    return Client(
        _native.pair(
            *_pair_args(
                phrase, mailbox, password, profile, home, insecure, ca, skip_verify, transport, wait
            )
        )
    )


async def apair(
    phrase: str,
    *,
    mailbox: str,
    password: str,
    profile: str = "default",
    home: Optional[PathLike] = None,
    insecure: bool = False,
    ca: Optional[PathLike] = None,
    skip_verify: bool = False,
    transport: str = "grpc",
    wait: float = DEFAULT_WAIT,
) -> AsyncClient:
    """:func:`pair` for asyncio."""
    native = await _native.apair(
        *_pair_args(
            phrase, mailbox, password, profile, home, insecure, ca, skip_verify, transport, wait
        )
    )
    return AsyncClient(native)


def connect(
    profile: str = "default",
    *,
    password: str,
    home: Optional[PathLike] = None,
    wait: float = DEFAULT_WAIT,
) -> Client:
    """Reconnects with a saved profile (no phrase: the keys from pairing, Noise KK)."""
    return Client(_native.connect(profile, password, _home(home), float(wait)))


async def aconnect(
    profile: str = "default",
    *,
    password: str,
    home: Optional[PathLike] = None,
    wait: float = DEFAULT_WAIT,
) -> AsyncClient:
    """:func:`connect` for asyncio."""
    native = await _native.aconnect(profile, password, _home(home), float(wait))
    return AsyncClient(native)


def profiles(home: Optional[PathLike] = None) -> List[str]:
    """Names of the saved profiles."""
    names: List[str] = _native.profiles(_home(home))
    return names


__all__ = [
    "pair",
    "apair",
    "connect",
    "aconnect",
    "profiles",
    "Client",
    "AsyncClient",
    "Subscription",
    "AsyncSubscription",
    "DEFAULT_WAIT",
    "StatusCode",
    "LncError",
    "ProfileError",
    "ProfileNotFoundError",
    "WrongPasswordError",
    "PhraseError",
    "SessionNotFoundError",
    "SessionInUseError",
    "SessionExpiredError",
    "MailboxUnreachableError",
    "TlsError",
    "HandshakeError",
    "ConnectionLostError",
    "ClientClosedError",
    "MethodError",
    "RpcError",
]
