"""Every option of every user-facing command line says what it does (`--help` is the first thing people read):
the `strvos` command and its sub-commands, scripts/demo.py and the benchmark tools."""
from __future__ import annotations

import argparse
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ["scripts/demo.py", "tools/benchmark_core.py", "tools/benchmark_node.py", "tools/soak.py",
           "tools/reliability/driver.py"]


def undocumented(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += undocumented(sub, f"{prefix} {name}")
        elif action.option_strings and not (action.help and action.help.strip()):
            missing.append(f"{prefix} {'/'.join(action.option_strings)}")
    return missing


def test_strvos_options_all_have_help():
    from strvos_core.cli.main import build_parser

    assert undocumented(build_parser(), "strvos") == []


class _Parsed(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__()
        self.parser = parser


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_options_all_have_help(script, monkeypatch):
    def capture(self, *args, **kwargs):
        raise _Parsed(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    monkeypatch.setattr("sys.argv", [script])
    with pytest.raises(_Parsed) as parsed:
        runpy.run_path(str(ROOT / script), run_name="__main__")
    assert undocumented(parsed.value.parser, script) == []
