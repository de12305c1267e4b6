"""The `lake` command."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lake", description="Operate the data lake pipeline")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="synthesize the stack and summarise what would deploy")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from app import main as synth_main

        return synth_main([])
    return 2


if __name__ == "__main__":
    sys.exit(main())
