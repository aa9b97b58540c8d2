"""What a process holds, read from /proc (Linux): resident memory, threads, open file descriptors. Read from
outside the process, so the node needs no hook for them."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessSample:
    rss_bytes: int
    threads: int
    fds: int

    @property
    def rss_mib(self) -> float:
        return self.rss_bytes / 2**20


def sample(pid: int) -> ProcessSample:
    """RSS (VmRSS), thread count and open descriptors of ``pid``; OSError when it is gone."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss_kib = int(fields["VmRSS"].split()[0])
    threads = int(fields["Threads"].strip())
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return ProcessSample(rss_kib * 1024, threads, fds)


def find_child(parent: int, name: str) -> int | None:
    """The pid of the first descendant of ``parent`` whose command line mentions ``name`` (e.g. the node
    process under `ros2 launch`)."""
    import psutil

    try:
        for child in psutil.Process(parent).children(recursive=True):
            try:
                if any(name in part for part in child.cmdline()):
                    return child.pid
            except psutil.Error:
                continue
    except psutil.Error:
        return None
    return None
