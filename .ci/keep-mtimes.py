#!/usr/bin/env python3
"""Give a fresh clone the file times of the previous CI run, for files whose content is unchanged.

Why: Cargo decides whether a workspace crate is stale by comparing its sources' mtimes with
the last build's. A fresh clone stamps every file with the clone time, so a warm target dir
outside the clone would still rebuild every workspace crate (10-20 minutes on 2 cores).

How, safely: the manifest (in the cache) maps each path to the git blob id and the mtime
it had in the last run. A file whose blob id is unchanged gets that mtime back; a file that
is new or changed keeps its clone time, which is newer than any earlier build, so Cargo
rebuilds exactly what changed. Files with uncommitted edits (a local run in a working
tree) are never touched, since their index blob id does not describe their content.

Usage: keep-mtimes.py MANIFEST   (run at the repository root)
"""

import os
import subprocess
import sys


def git(*args: str) -> bytes:
    return subprocess.run(["git", *args], check=True, capture_output=True).stdout


def main() -> int:
    manifest_path = sys.argv[1]
    previous: dict[str, tuple[str, int]] = {}
    try:
        with open(manifest_path, encoding="utf-8") as f:
            for line in f:
                blob, mtime, path = line.rstrip("\n").split("\t", 2)
                previous[path] = (blob, int(mtime))
    except FileNotFoundError:
        pass
    except ValueError:
        previous = {}  # a damaged manifest only costs a full rebuild

    dirty = {p.decode() for p in git("diff", "--name-only", "-z", "HEAD").split(b"\0") if p}
    restored = kept = 0
    lines = []
    for entry in git("ls-files", "-s", "-z").split(b"\0"):
        if not entry:
            continue
        meta, path_b = entry.split(b"\t", 1)
        mode, blob, _stage = meta.decode().split(" ")
        path = path_b.decode()
        if mode == "120000" or path in dirty or not os.path.isfile(path):
            continue
        old = previous.get(path)
        if old is not None and old[0] == blob:
            os.utime(path, ns=(old[1], old[1]), follow_symlinks=False)
            mtime = old[1]
            restored += 1
        else:
            mtime = os.stat(path).st_mtime_ns
            kept += 1
        lines.append(f"{blob}\t{mtime}\t{path}\n")

    tmp = manifest_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(lines)
    os.replace(tmp, manifest_path)
    print(f"file times: {restored} unchanged files keep the last run's time, {kept} new or changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
