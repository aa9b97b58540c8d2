"""benchmarks/reliability.md: the machine, its load, the command, and each scenario's figures. The tool writes
between the BEGIN/END markers and keeps the rest of the file (the hand-written account of failures found)."""
from __future__ import annotations

import os
import platform
import subprocess
import threading
import time
from pathlib import Path

from reliability.outcome import Outcome

BEGIN, END = "<!-- tools/soak.py: BEGIN -->", "<!-- tools/soak.py: END -->"


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))
        memory = f"{mem / 2**20:.0f} GiB"
    except (OSError, StopIteration):
        memory = "?"
    return (f"{model}, {os.cpu_count()} cores, {memory} RAM, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def commit() -> str:
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parents[2], timeout=10).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


class LoadWatch(threading.Thread):
    """The 1-minute load average every 10 s while the scenarios run (min / mean / max for the report)."""

    def __init__(self) -> None:
        super().__init__(name="load-watch", daemon=True)
        self.samples: list[float] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._halt.wait(10.0):
                return

    def stop(self) -> None:
        self._halt.set()
        self.join(2.0)

    def summary(self) -> str:
        s = list(self.samples) or [os.getloadavg()[0]]
        return f"1-min load average min {min(s):.1f} / mean {sum(s) / len(s):.1f} / max {max(s):.1f}"


def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def section(outcome: Outcome) -> str:
    lines = [f"### {outcome.name}: {'held' if outcome.held else 'FAILED'} ({outcome.seconds:.0f} s)", ""]
    if outcome.figures:
        lines += ["| figure | value |", "|---|---|"]
        lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in outcome.figures.items()]
        lines.append("")
    if outcome.table:
        keys = list(dict.fromkeys(k for row in outcome.table for k in row))
        lines += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(_cell(row.get(k, "")) for k in keys) + " |" for row in outcome.table]
        lines.append("")
    if outcome.failures:
        lines += ["Failed criteria:", ""] + [f"* {_cell(f)}" for f in outcome.failures] + [""]
    return "\n".join(lines)


def render(outcomes: list[Outcome], command: str, load: str, note: str, started: float) -> str:
    lines = [BEGIN, "", f"Measured {time.strftime('%Y-%m-%d %H:%M %Z', time.localtime(started))} at commit "
             f"{commit()} on {machine()}.", "",
             f"Load: {load}{'; ' + note if note else ''}.", "", f"Command: `{command}`", "",
             "| scenario | result | time |", "|---|---|---|"]
    lines += [f"| {o.name} | {'held' if o.held else 'FAILED: ' + _cell('; '.join(o.failures))[:300]} | "
              f"{o.seconds:.0f} s |" for o in outcomes]
    lines.append("")
    lines += [section(o) for o in outcomes]
    lines.append(END)
    return "\n".join(lines) + "\n"


def write(path: Path, block: str, title: str) -> None:
    """Replace the block between the markers in ``path`` (or create the file with ``title``)."""
    text = path.read_text() if path.exists() else f"{title}\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + block.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text)
