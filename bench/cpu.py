"""How much of the machine other processes used while we measured (the machine may be shared).

The benchmark's own processes are the harness (with the children it has waited for, such as
wrk), the web process, Redis, and the PostgreSQL postmaster with its backends. Everything else
that used CPU meanwhile is interference, reported next to each measurement, and the harness
waits for a quiet machine before each one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def _process(pid: int) -> tuple[int, int] | None:
    """(parent pid, CPU ticks including waited-for children) of a live process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    # After the name: state ppid … utime(12) stime(13) cutime(14) cstime(15), 0-based here.
    return int(fields[1]), sum(int(v) for v in fields[11:15])


class Interference:
    """Measures the share of the machine used by processes outside ``roots`` and their children."""

    def __init__(self, roots):
        self.roots = roots  # callable returning the pids of our long-lived processes

    def _our_ticks(self) -> int:
        parents: dict[int, int] = {}
        ticks: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                found = _process(int(entry))
                if found:
                    parents[int(entry)], ticks[int(entry)] = found
        ours = {pid for pid in self.roots() if pid in ticks}
        grew = True
        while grew:
            children = {pid for pid, parent in parents.items() if parent in ours and pid not in ours}
            grew = bool(children)
            ours |= children
        return sum(ticks[pid] for pid in ours)

    def snapshot(self) -> tuple[int, int, int, float]:
        busy, total = _machine_ticks()
        return busy, total, self._our_ticks(), time.monotonic()

    def share_since(self, start) -> float:
        """Fraction of the whole machine (all CPUs) others used since ``start`` (a snapshot)."""
        busy, total, ours, _ = self.snapshot()
        elapsed = total - start[1]
        if elapsed <= 0:
            return 0.0
        return max(0.0, ((busy - start[0]) - (ours - start[2])) / elapsed)

    def wait_for_quiet(self, threshold: float, max_wait: float, window: float = 2.0) -> dict:
        """Wait until others use less than ``threshold`` of the machine over ``window`` seconds."""
        started = time.monotonic()
        while True:
            start = self.snapshot()
            time.sleep(window)
            share = self.share_since(start)
            waited = time.monotonic() - started
            if share < threshold or waited >= max_wait:
                return {"others": round(share, 3), "waited_s": round(waited, 1)}
