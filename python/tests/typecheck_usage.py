"""Checked by `mypy --strict` in CI (not run): the wheel's types (py.typed, the native
module's .pyi) cover the README's usage, so a typed app sees no `Any` holes or errors."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import lnc


def sync_usage(phrase: str, pw: str) -> None:
    c: lnc.Client = lnc.pair(phrase, mailbox="127.0.0.1:1", password=pw, insecure=True)
    c.close()
    with lnc.connect(profile="mynode", password=pw, home="/tmp/x", wait=3) as c:
        info: Dict[str, Any] = c.call("lnrpc.Lightning.GetInfo", {})
        expiry: Optional[int] = c.expiry
        print(info, expiry, c.node_pubkey, c.status, c.is_connected, c.mailbox)
        with c.subscribe("lnrpc.Lightning.SubscribeInvoices") as sub:
            for inv in sub:
                print(inv["memo"])
    names: List[str] = lnc.profiles()
    print(names)
    try:
        lnc.connect(password=pw)
    except lnc.RpcError as e:
        code: lnc.StatusCode = e.code
        details: str = e.details
        print(code.name, details)
    except lnc.SessionExpiredError as e2:
        print(e2.expiry)
    except lnc.LncError as e3:
        print(e3.message)


async def async_usage(phrase: str, pw: str) -> None:
    c = await lnc.apair(phrase, mailbox="127.0.0.1:1", password=pw, transport="ws")
    await c.close()
    async with await lnc.aconnect(profile="mynode", password=pw) as ac:
        info: Dict[str, Any] = await ac.call("lnrpc.Lightning.GetInfo")
        print(info)
        async for inv in ac.subscribe("lnrpc.Lightning.SubscribeInvoices"):
            print(inv["memo"])
