"""Python call overhead over the Rust client, measured in one run on one connection.

Starts the test stack (relay, lnd-sim, node: tests/conftest.py), pairs, then times N
sequential unary calls three ways on the same tunnel:

* rust:   the Rust client alone, looping in Rust (`NativeClient._bench_rust`);
* sync:   `client.call(method, dict)` from Python (dict→JSON, GIL release, JSON→dict);
* async:  `await client.call(...)` on asyncio (plus the asyncio/tokio bridge).

Usage: python python/tests/bench.py [--calls N] [--method lnrpc.Lightning.GetInfo]
(with the wheel installed; run it from outside python/, so that `import lnc` is the wheel).
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import statistics
import tempfile
import time

import lnc
from conftest import PASSWORD, Stack, lnc_bin


def summary(name: str, lat: list, base: float) -> str:
    lat = sorted(lat)
    med = statistics.median(lat)
    p90 = lat[int(0.9 * (len(lat) - 1))]
    return (
        f"{name:6} median {med * 1e6:8.0f} µs  p90 {p90 * 1e6:8.0f} µs  "
        f"overhead {(med - base) * 1e6:+7.0f} µs ({med / base:.3f}×)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--method", default="lnrpc.Lightning.GetInfo")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lnc-py-bench-") as d:
        stack = Stack(lnc_bin(), pathlib.Path(d))
        try:
            _, phrase = stack.add("--type", "admin")
            home = pathlib.Path(d) / "home"
            with lnc.pair(
                phrase, mailbox=stack.relay, insecure=True, password=PASSWORD, home=home
            ) as c:
                n = args.calls
                for _ in range(50):  # warm up both paths
                    c.call(args.method)
                c._c._bench_rust(args.method, "{}", 50)
                # Interleaved rounds, so load from other processes hits all three alike.
                rust, sync, asy = [], [], []
                rounds = 5
                for _ in range(rounds):
                    rust += c._c._bench_rust(args.method, "{}", n // rounds)
                    for _ in range(n // rounds):
                        t = time.perf_counter()
                        c.call(args.method, {})
                        sync.append(time.perf_counter() - t)

                    async def run() -> list:
                        ac = lnc.AsyncClient(c._c)  # the same tunnel, asyncio API
                        out = []
                        for _ in range(n // rounds):
                            t = time.perf_counter()
                            await ac.call(args.method, {})
                            out.append(time.perf_counter() - t)
                        return out

                    asy += asyncio.run(run())
            base = statistics.median(rust)
            print(f"python call overhead: {n} sequential {args.method} calls per path, one tunnel")
            print(summary("rust", rust, base))
            print(summary("sync", sync, base))
            print(summary("async", asy, base))
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
