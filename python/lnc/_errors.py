"""The exceptions ``lnc`` raises: one class per case, all under :class:`LncError`.

The Rust side (``lnc._native``) maps lnc-client's typed errors onto these classes; every
message says what the user can do, and none contains the phrase or the password.
"""

from __future__ import annotations

import enum
from typing import Optional


class StatusCode(enum.IntEnum):
    """gRPC status codes, as carried by :class:`RpcError`."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class LncError(Exception):
    """Base class of every error ``lnc`` raises."""

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ProfileError(LncError):
    """The profile store could not be used (bad name, unreadable or corrupt file, no HOME)."""


class ProfileNotFoundError(ProfileError):
    """No profile of that name: pair first (``lnc.pair``)."""


class WrongPasswordError(LncError):
    """The password does not open the profile (or the file was modified)."""


class PhraseError(LncError):
    """The pairing phrase is not ten words of the list."""


class SessionNotFoundError(LncError):
    """Nothing answered on the session's streams: wrong phrase, node offline, session
    revoked, or the phrase's first-connection window passed."""


class SessionInUseError(LncError):
    """Another client is connected with this session."""


class SessionExpiredError(LncError):
    """The session's macaroon has expired: create a new session and pair again."""

    def __init__(self, message: str, expiry: Optional[int] = None) -> None:
        super().__init__(message)
        #: Expiry, Unix seconds.
        self.expiry = expiry


class MailboxUnreachableError(LncError):
    """The relay could not be reached (address, port, network)."""


class TlsError(LncError):
    """TLS to the relay failed (pass ``ca=`` for a private CA, ``insecure=True`` for plaintext)."""


class HandshakeError(LncError):
    """The Noise handshake with the node failed."""


class ConnectionLostError(LncError):
    """The tunnel dropped during the call; the client reconnects by itself, retry."""


class ClientClosedError(LncError):
    """The client was closed."""


class MethodError(LncError):
    """Unknown method, a request that does not fit it, or a unary/streaming mix-up."""


class RpcError(LncError):
    """The node (LND) answered with a gRPC error status."""

    def __init__(self, message: str, code: int = StatusCode.UNKNOWN, details: str = "") -> None:
        super().__init__(message)
        try:
            #: The gRPC status code.
            self.code: StatusCode = StatusCode(code)
        except ValueError:
            self.code = StatusCode.UNKNOWN
        #: The node's own message (the status message, without lnc's prefix).
        self.details = details


__all__ = [
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
