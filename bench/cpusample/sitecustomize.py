"""A CPU-weighted stack sampler for every Python process of a benchmark run (bench only).

With this directory on ``PYTHONPATH`` and ``NOVALITE_SAMPLE_DIR`` set, each Python process started
(the API workers, conductors, compute agents) runs a thread that every 5 ms looks at every other
thread and, for those whose CPU time (``/proc/self/task/TID/stat``) moved since the last look,
counts the current stack with the clock ticks used. Every 5 s it writes the counts to
``$NOVALITE_SAMPLE_DIR/<pid>-<argv>.txt`` (one ``frame;frame;... ticks`` line per stack), so a
process killed at the end of a run still leaves them. Copy the directory before and after the phase
of interest and subtract. The sampler costs CPU itself (figures of a sampled run are not comparable
with unsampled ones); blocking calls just after some work are over-counted.
"""

from __future__ import annotations

import collections
import os
import sys
import threading
import time

OUT = os.environ.get("NOVALITE_SAMPLE_DIR")


def _cpu_ticks(tid: int) -> int | None:
    try:
        with open(f"/proc/self/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def _stack(frame: object) -> str:
    names = []
    f = frame
    while f is not None:
        co = f.f_code  # type: ignore[attr-defined]
        names.append(f"{os.path.basename(co.co_filename)}:{co.co_name}")
        f = f.f_back  # type: ignore[attr-defined]
    return ";".join(reversed(names))


def _sample(out: str) -> None:
    counts: collections.Counter[str] = collections.Counter()
    last: dict[int, int] = {}
    me = threading.get_ident()
    argv = "_".join(os.path.basename(a) for a in sys.argv[:3]).replace("/", "_")
    path = os.path.join(out, f"{os.getpid()}-{argv}.txt")
    flush_at = time.monotonic() + 5
    while True:
        time.sleep(0.005)
        natives = {t.ident: t.native_id for t in threading.enumerate()}
        for ident, frame in sys._current_frames().items():
            nid = natives.get(ident)
            if ident == me or nid is None:
                continue
            ticks = _cpu_ticks(nid)
            if ticks is None:
                continue
            before, last[nid] = last.get(nid), ticks
            if before is not None and ticks > before:
                counts[_stack(frame)] += ticks - before
        if time.monotonic() > flush_at:
            flush_at = time.monotonic() + 5
            with open(path + ".tmp", "w") as fh:
                fh.writelines(f"{k} {v}\n" for k, v in counts.most_common())
            os.replace(path + ".tmp", path)


if OUT:
    threading.Thread(target=_sample, args=(OUT,), daemon=True, name="cpu-sampler").start()
