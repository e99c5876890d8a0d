"""What machine a figure came from, printed with every benchmark result."""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime


def describe() -> str:
    """Cores, memory, Python and date: enough to compare figures across runs."""
    mem_gib = 0.0
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    mem_gib = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return (
        f"{datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores, {mem_gib:.0f} GiB, "
        f"Python {sys.version.split()[0]}, {platform.machine()}"
    )


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks
