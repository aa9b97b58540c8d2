"""The `strvos` command line: one sub-command per module, imported only when it runs."""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> module providing `add_arguments(parser)` and `run(args) -> int`, plus a `HELP` line.
COMMANDS: dict[str, str] = {
    "eval": "strvos_core.cli.eval",
    "segment": "strvos_core.cli.segment",
    "synthetic": "strvos_core.cli.synthetic",
    "train": "strvos_core.cli.train",
    "convert": "strvos_core.cli.convert",
}


def build_parser() -> argparse.ArgumentParser:
    from strvos_core import __version__

    parser = argparse.ArgumentParser(
        prog="strvos", description="Streaming referring video object segmentation (StreamingRVOS)."
    )
    parser.add_argument("--version", action="version", version=f"strvos {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
