"""`lake up`: the local cloud as a long-running service. Files that appear in the raw bucket's folder
(copied there by hand or with `lake --local put`) become S3 events; batches start executions; results
are printed as they finish. Other `lake --local ...` commands connect through `<root>/cloud.json`."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

from rich.console import Console

from lake import render
from lake.local.runtime import LocalPipeline, synthesize
from lake.local.trigger import object_created_event


class RawFolderWatcher:
    """Publishes an `Object Created` event for every new or changed file under the raw bucket folder."""

    def __init__(self, pipeline: LocalPipeline) -> None:
        self.pipeline = pipeline
        self.bucket = pipeline.bucket("StorageRaw")
        self.folder = pipeline.root / self.bucket
        self.seen: dict[Path, tuple[float, int]] = self._snapshot()

    def _snapshot(self) -> dict[Path, tuple[float, int]]:
        return {p: (p.stat().st_mtime, p.stat().st_size) for p in self.folder.rglob("*") if p.is_file()}

    def poll(self) -> list[str]:
        current = self._snapshot()
        changed = sorted(p for p, stamp in current.items() if self.seen.get(p) != stamp)
        self.seen = current
        keys = []
        for path in changed:
            key = path.relative_to(self.folder).as_posix()
            self.pipeline.publish(object_created_event(self.bucket, key, path.stat().st_size))
            keys.append(key)
        return keys


def _stop_on_sigterm() -> None:
    """Stop cleanly on SIGTERM too (service managers, `kill`), not only on Ctrl-C."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def run_up(root: Path, stage: str, console: Console, poll_s: float = 0.5) -> int:
    _stop_on_sigterm()
    root.mkdir(parents=True, exist_ok=True)
    stack = synthesize(stage, root / "cdk.out")
    with LocalPipeline(root / "lake", stack) as pipeline:
        state = {"endpoint": pipeline.cloud.endpoint_url, "resources": pipeline.resources().to_json()}
        (root / "cloud.json").write_text(json.dumps(state, indent=2))
        watcher = RawFolderWatcher(pipeline)
        console.print(f"local cloud for stage {stage} at {pipeline.cloud.endpoint_url}")
        console.print(f"drop files into {watcher.folder}/<dataset>/<partition>/ or use `lake --local put`")
        console.print("operate it with `lake --local executions | show | rerun | query | lineage`; Ctrl-C stops")

        from_pipe: set[str] = set()

        def report(arn: str) -> None:
            render.print_result(console, pipeline.wait(arn, timeout=3600))
            for message in pipeline.outbox()[-1:]:
                console.print(f"[dim]notification:[/] {message['message'].splitlines()[0]}")

        def report_other(arn: str) -> None:
            """Executions started elsewhere (`lake --local rerun`) that the failure rule reported."""
            if arn not in from_pipe:
                render.print_result(console, pipeline.wait(arn, timeout=60))
                for message in pipeline.outbox()[-1:]:
                    console.print(f"[dim]notification:[/] {message['message'].splitlines()[0]}")

        pipeline.on_execution_ended = report_other

        try:
            while True:
                for key in watcher.poll():
                    console.print(f"[dim]event:[/] Object Created s3://{watcher.bucket}/{key}")
                assert pipeline.trigger is not None
                for arn in pipeline.trigger.flush():
                    console.print(f"started execution {arn.rsplit(':', 1)[-1]}")
                    from_pipe.add(arn)
                    threading.Thread(target=report, args=(arn,), daemon=True).start()
                time.sleep(poll_s)
        except KeyboardInterrupt:
            console.print("stopping the local cloud")
        finally:
            (root / "cloud.json").unlink(missing_ok=True)
    return 0
