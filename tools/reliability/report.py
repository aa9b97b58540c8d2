"""benchmarks/reliability.md: each scenario's figures, with when, where (commit, machine), under what load and by
which command they were measured. The tool writes between the BEGIN/END markers and keeps the rest of the file
(the hand-written account of failures found). Scenarios run separately accumulate: a run replaces the sections of
the scenarios it ran and keeps the others' (each section carries its own measurement line)."""
from __future__ import annotations

import os
import platform
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from reliability.outcome import Outcome

BEGIN, END = "<!-- tools/soak.py: BEGIN -->", "<!-- tools/soak.py: END -->"
SCENARIOS = ("soak", "lifecycle", "fuzz", "crash", "camera")
_SCENARIO_OF = {"train kill/resume": "crash", "eval kill/resume": "crash", "camera loss": "camera"}
_TAG = re.compile(r"<!-- scenario: (\w+) -->")
_HEADING = re.compile(r"### (.+): (held|FAILED) \((\d+) s\)")


def scenario_of(outcome_name: str) -> str:
    """The tools/soak.py scenario an outcome belongs to (crash gives two outcomes, train and eval)."""
    return _SCENARIO_OF.get(outcome_name, outcome_name)


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
        self.samples: list[tuple[float, float]] = []  # (time.time(), 1-min load average)
        self._halt = threading.Event()

    def run(self) -> None:
        while True:
            self.samples.append((time.time(), os.getloadavg()[0]))
            if self._halt.wait(10.0):
                return

    def stop(self) -> None:
        self._halt.set()
        self.join(2.0)

    def summary(self, since: float = 0.0) -> str:
        """Min / mean / max of the samples taken since ``since`` (time.time(); default: all)."""
        s = [load for t, load in list(self.samples) if t >= since] or [os.getloadavg()[0]]
        return f"1-min load average min {min(s):.1f} / mean {sum(s) / len(s):.1f} / max {max(s):.1f}"


def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


@dataclass(frozen=True)
class Context:
    """Where, when and how a scenario was measured (one line at the top of its section)."""

    started: float  # time.time() when the scenario started
    load: str       # LoadWatch.summary() over the scenario
    note: str       # --load-note: what else ran on the machine
    command: str
    revision: str   # commit() when the scenario started
    host: str       # machine()

    def line(self) -> str:
        return (f"Measured {time.strftime('%Y-%m-%d %H:%M %Z', time.localtime(self.started))} at commit "
                f"{self.revision} on {self.host}. Load: {self.load}{'; ' + self.note if self.note else ''}. "
                f"Command: `{self.command}`")


def section(outcome: Outcome, context: Context) -> str:
    lines = [f"<!-- scenario: {scenario_of(outcome.name)} -->",
             f"### {outcome.name}: {'held' if outcome.held else 'FAILED'} ({outcome.seconds:.0f} s)", "",
             context.line(), ""]
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
    return "\n".join(lines).rstrip("\n") + "\n"


def sections_of(block: str) -> list[tuple[str, str]]:
    """(scenario, text) of each section in a block the tool wrote. A section without its own measurement line
    (the earlier format: one line for the whole block) gets the block's."""
    lines = block.replace(BEGIN, "").replace(END, "").splitlines()
    shared = [line for line in lines[: next((i for i, line in enumerate(lines) if line.startswith("### ")),
                                            len(lines))]
              if line.startswith(("Measured ", "Load: ", "Command: "))]
    found: list[tuple[str, list[str]]] = []
    for i, line in enumerate(lines):
        heading = _HEADING.match(line)
        if heading:
            tag = _TAG.match(lines[i - 1]) if i else None
            found.append((tag.group(1) if tag else scenario_of(heading.group(1)), [line]))
        elif found and not _TAG.match(line):
            found[-1][1].append(line)
    out = []
    for scenario, body in found:
        if not any(line.startswith("Measured ") for line in body[:3]) and shared:
            body = [body[0], "", " ".join(shared), *body[1:]]
        out.append((scenario, "\n".join([f"<!-- scenario: {scenario} -->", *body]).strip("\n") + "\n"))
    return out


def _summary_row(text: str) -> str:
    heading = next(_HEADING.match(line) for line in text.splitlines() if _HEADING.match(line))
    name, result, seconds = heading.groups()
    if result == "FAILED":
        bullets = text.split("Failed criteria:", 1)[-1]
        failures = [line[2:] for line in bullets.splitlines() if line.startswith("* ")]
        result = "FAILED: " + "; ".join(failures)[:300]
    when = re.search(r"Measured (\S+ \S+)", text)
    return f"| {name} | {result} | {seconds} s | {when.group(1) if when else '?'} |"


def render(sections: list[tuple[str, str]]) -> str:
    sections = sorted(sections, key=lambda s: SCENARIOS.index(s[0]) if s[0] in SCENARIOS else len(SCENARIOS))
    lines = [BEGIN, "", "Each section names when, at which commit and on what machine it was measured, the load "
             "and the command; scenarios run separately are kept side by side (a run replaces the sections of "
             "the scenarios it ran).", "", "| scenario | result | time | measured |", "|---|---|---|---|"]
    lines += [_summary_row(text) for _, text in sections]
    lines.append("")
    lines += [text for _, text in sections]
    lines.append(END)
    return "\n".join(lines) + "\n"


def write(path: Path, measured: list[tuple[Outcome, Context]], title: str) -> None:
    """Put ``measured`` into the block between the markers in ``path`` (created with ``title`` when missing):
    sections of the scenarios measured now replace theirs, the others' are kept."""
    text = path.read_text() if path.exists() else f"{title}\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        old, tail = rest.split(END, 1)
    else:
        head, old, tail = text.rstrip("\n") + "\n\n", "", "\n"
    now = [(scenario_of(o.name), section(o, c)) for o, c in measured]
    replaced = {scenario for scenario, _ in now}
    kept = [(scenario, body) for scenario, body in sections_of(old) if scenario not in replaced]
    path.write_text(head + render(kept + now).rstrip("\n") + tail)
