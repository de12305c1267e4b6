#!/usr/bin/env python3
"""CDK entry point: reads the stage config from cdk.json context and builds the stack.

cdk synth -c stage=dev           # via the CDK CLI (cdk.json runs this file with the venv's Python)
python app.py -c stage=dev       # without the CLI (`make synth` runs it with the default stage, dev)

`-c stage=prod` needs real on-call subscriptions in cdk.json first: its placeholders are refused (exit code 2).

The cloud assembly goes to $CDK_OUTDIR when the CDK CLI sets it (`cdk synth -o <dir>`), else to cdk.out/.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from workflows.config import ConfigError, StageConfig, load_stage

if TYPE_CHECKING:
    import aws_cdk as cdk

    from workflows.stack import DataLakeStack

REPO_ROOT = Path(__file__).resolve().parent
# jsii prints a dozen-line Node.js support banner (as Python byte-string reprs) on every start under Node 20;
# these are jsii's switches for it (the first names Node majors). The README lists the supported versions.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


def cli_context(argv: list[str]) -> dict[str, str]:
    """`-c key=value` pairs, as the CDK CLI accepts them."""
    context: dict[str, str] = {}
    for flag, value in zip(argv, argv[1:], strict=False):
        if flag in ("-c", "--context"):
            key, sep, val = value.partition("=")
            if not sep:
                raise ConfigError(key, "context must be given as -c key=value")
            context[key] = val
    return context


def build_app(
    context: dict | None = None, outdir: str | None = None, nag: bool = True
) -> tuple[cdk.App, DataLakeStack, StageConfig]:
    """Build the CDK app. `context` overrides cdk.json (the CLI's CDK_CONTEXT_JSON overrides both)."""
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks

    from workflows.stack import DataLakeStack

    file_context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    merged = {**file_context, **(context or {})}
    app = cdk.App(context=merged, outdir=outdir)
    config = load_stage({key: app.node.try_get_context(key) for key in ("stage", "stages")}, REPO_ROOT / "datasets")
    stack = DataLakeStack(
        app,
        f"DataLake-{config.name}",
        config=config,
        repo_root=REPO_ROOT,
        build_dir=REPO_ROOT / "build",
        env=cdk.Environment(account=config.account, region=config.region) if config.region else None,
        description=f"Serverless data lake pipeline ({config.name})",
    )
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack, config


def main(argv: list[str]) -> int:
    try:
        outdir = os.environ.get("CDK_OUTDIR") or str(REPO_ROOT / "cdk.out")
        app, stack, config = build_app(cli_context(argv), outdir=outdir)
        assembly = app.synth()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    template = assembly.get_stack_by_name(stack.stack_name).template
    counts: dict[str, int] = {}
    for resource in template["Resources"].values():
        counts[resource["Type"]] = counts.get(resource["Type"], 0) + 1
    print(f"Synthesized stack {stack.stack_name} (stage {config.name}) to {assembly.directory}")
    print(f"Datasets: {', '.join(d.name for d in config.datasets)}")
    for kind, count in sorted(counts.items()):
        print(f"  {count:3d}  {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
