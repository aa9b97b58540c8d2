"""tools/soak.py's report: scenarios run separately accumulate in benchmarks/reliability.md (a run replaces the
sections of the scenarios it ran, keeps the others' with their own measurement line), and a block of the earlier
format (one measurement line for all) keeps its figures."""
from __future__ import annotations

from reliability import report
from reliability.outcome import Outcome

OLD_FORMAT = f"""# Title

Hand-written text.

{report.BEGIN}

Measured 2026-12-04 18:31 UTC at commit a94ef10-dirty on some CPU.

Load: 1-min load average min 4.1 / mean 5.1 / max 6.1; a training run.

Command: `python tools/soak.py --scenarios soak`

| scenario | result | time |
|---|---|---|
| soak | held | 671 s |

### soak: held (671 s)

| figure | value |
|---|---|
| frames sent | 10000 |

{report.END}

## After the block
"""


def _context(command: str) -> report.Context:
    return report.Context(1.8e9, "1-min load average min 1.0 / mean 1.5 / max 2.0", "a note", command, "abc1234",
                          "a machine")


def test_scenarios_run_separately_accumulate_and_replace_only_their_own(tmp_path):
    path = tmp_path / "reliability.md"
    path.write_text(OLD_FORMAT)
    lifecycle = Outcome("lifecycle", figures={"cycles": 100}, seconds=1500)
    report.write(path, [(lifecycle, _context("soak.py --scenarios lifecycle"))], "# Title")
    crash = [Outcome("train kill/resume", figures={"kills": 5}, seconds=300),
             Outcome("eval kill/resume", failures=["scores differ"], seconds=200)]
    report.write(path, [(o, _context("soak.py --scenarios crash")) for o in crash], "# Title")
    text = path.read_text()
    assert text.startswith("# Title\n\nHand-written text.\n") and text.rstrip().endswith("## After the block")
    assert "| frames sent | 10000 |" in text  # the soak's figures are kept, with the block's measurement line
    soak = text.split("### soak:")[1].split("###")[0]
    assert "Measured 2026-12-04 18:31 UTC at commit a94ef10-dirty" in soak and "a training run" in soak
    assert "| cycles | 100 |" in text and "| kills | 5 |" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and " s | " in line]
    assert [row.split(" | ")[0] for row in rows] == ["| soak", "| lifecycle", "| train kill/resume",
                                                      "| eval kill/resume"]
    assert "FAILED: scores differ" in rows[-1]

    again = Outcome("lifecycle", figures={"cycles": 3}, seconds=40)
    report.write(path, [(again, _context("soak.py --scenarios lifecycle --cycles 3"))], "# Title")
    text = path.read_text()
    assert "| cycles | 3 |" in text and "| cycles | 100 |" not in text
    assert text.count("### lifecycle:") == 1 and text.count("### soak:") == 1 and "| kills | 5 |" in text
    report.write(path, [(again, _context("same again"))], "# Title")
    assert path.read_text().replace("same again", "soak.py --scenarios lifecycle --cycles 3") == text  # stable
