"""Step Functions executions: waiting for them and summarising their history as the console shows it.

Works with any Step Functions client: AWS, or the local cloud's emulator.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


@dataclass(frozen=True)
class StateVisit:
    """One state entered by an execution."""

    name: str
    type: str
    duration_s: float | None
    error: str | None = None
    cause: str | None = None
    in_map_iteration: bool = False


@dataclass(frozen=True)
class ExecutionResult:
    arn: str
    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    states: tuple[StateVisit, ...] = field(default=())
    duration_s: float | None = None
    input: Any = None
    last_output: Any = None  # the data the last top-level state passed on (notes the pipeline made so far)

    @property
    def name(self) -> str:
        return self.arn.rsplit(":", 1)[-1]

    @property
    def visited(self) -> list[str]:
        return [s.name for s in self.states]

    @property
    def failed_state(self) -> StateVisit | None:
        """The last top-level state with an error (a Map's failing iteration fails the Map state too)."""
        failed = [s for s in self.states if s.error is not None]
        top_level = [s for s in failed if not s.in_map_iteration]
        return (top_level or failed or [None])[-1]

    def failed_states(self) -> list[StateVisit]:
        return [s for s in self.states if s.error is not None]


def _failure_details(event: dict[str, Any]) -> dict[str, Any] | None:
    for key, value in event.items():
        if key.endswith("FailedEventDetails") or key.endswith("TimedOutEventDetails"):
            return value
    return None


def _attaches_to(kind: str, visits: list[dict[str, Any]]) -> bool:
    """Without event ids: a failure event belongs to the last visited state unless that state already exited
    cleanly (a state that already has an error keeps it: `_Visits.fail`)."""
    if not visits:
        return False
    return not kind.startswith("Execution") or "end" not in visits[-1]


def _entered_by(event: dict[str, Any], by_id: dict[int, dict[str, Any]], entered: dict[int, dict[str, Any]]
                ) -> dict[str, Any] | None:  # fmt: skip
    """The visit whose StateEntered event `event` follows in its own chain of `previousEventId`s (a state's task
    events and its exit chain back to its entry within the same Map iteration), or None when the chain passes
    another state's exit first or has no ids. The last entered state is not enough: iterations of a Map run
    concurrently, so their events interleave."""
    previous = event.get("previousEventId")
    for _ in range(len(by_id)):
        if previous in entered:
            return entered[previous]
        ancestor = by_id.get(previous)  # type: ignore[arg-type]
        if ancestor is None or ancestor["type"].endswith("StateExited"):
            return None
        previous = ancestor.get("previousEventId")
    return None


class _Visits:
    """The visits of one history, built event by event (see `summarize_history`)."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.visits: list[dict[str, Any]] = []
        self.open_by_name: dict[str, dict[str, Any]] = {}  # the last entered visit of each state name, until it exits
        self.by_id = {e["id"]: e for e in events if "id" in e}
        self.entered: dict[int, dict[str, Any]] = {}  # StateEntered event id -> its visit

    def enter(self, event: dict[str, Any], kind: str, in_map: bool) -> None:
        name = event["stateEnteredEventDetails"]["name"]
        visit = {"name": name, "type": kind[: -len("StateEntered")], "start": event["timestamp"], "in_map": in_map}
        self.visits.append(visit)
        self.open_by_name[name] = visit
        if "id" in event:
            self.entered[event["id"]] = visit

    def exit(self, event: dict[str, Any]) -> None:
        name = event["stateExitedEventDetails"]["name"]
        visit = _entered_by(event, self.by_id, self.entered)
        if visit is None or visit["name"] != name:
            visit = self.open_by_name.get(name)
        if visit is None:
            return
        visit["end"] = event["timestamp"]
        if self.open_by_name.get(name) is visit:
            del self.open_by_name[name]

    def fail(self, event: dict[str, Any], kind: str, details: dict[str, Any]) -> None:
        visit = _entered_by(event, self.by_id, self.entered)
        if visit is None and _attaches_to(kind, self.visits):
            visit = self.visits[-1]
        if visit is not None and "error" not in visit:
            visit["error"], visit["cause"] = details.get("error"), details.get("cause")


def summarize_history(events: list[dict[str, Any]]) -> tuple[StateVisit, ...]:
    """Visited states in order, with per-state duration and the error/cause of failed ones."""
    reader = _Visits(events)
    open_iterations = 0
    for event in events:
        kind = event["type"]
        if kind == "MapIterationStarted":
            open_iterations += 1
        elif kind in ("MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted"):
            open_iterations = max(0, open_iterations - 1)
        if kind.endswith("StateEntered"):
            reader.enter(event, kind, in_map=open_iterations > 0)
        elif kind.endswith("StateExited"):
            reader.exit(event)
        elif (details := _failure_details(event)) and ("error" in details or "cause" in details):
            reader.fail(event, kind, details)
    if events:  # states still open when the execution ended (failure) or when the history was read
        for visit in reader.visits:
            visit.setdefault("end", events[-1]["timestamp"])
    return tuple(
        StateVisit(
            name=v["name"],
            type=v["type"],
            duration_s=(v["end"] - v["start"]).total_seconds(),
            error=v.get("error"),
            cause=v.get("cause"),
            in_map_iteration=v["in_map"],
        )
        for v in reader.visits
    )


def last_state_output(events: list[dict[str, Any]]) -> Any:
    """The parsed output of the last state that exited outside a Map iteration (None if there is none)."""
    depth = 0
    last = None
    for event in events:
        kind = event["type"]
        if kind == "MapIterationStarted":
            depth += 1
        elif kind in ("MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted"):
            depth = max(0, depth - 1)
        elif kind.endswith("StateExited") and depth == 0:
            last = event["stateExitedEventDetails"].get("output")
    return _json(last)


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def wait_for_execution(
    sfn: Any, execution_arn: str, timeout: float = 60.0, interval: float = 0.1
) -> ExecutionResult:
    """Poll DescribeExecution until terminal; raise TimeoutError naming the last visited state otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] in TERMINAL:
            break
        if time.monotonic() >= deadline:
            visited = [s.name for s in summarize_history(history(sfn, execution_arn))]
            raise TimeoutError(f"execution {execution_arn} still RUNNING after {timeout}s; visited {visited}")
        time.sleep(interval)
    return describe(sfn, execution_arn, described)


def describe(sfn: Any, execution_arn: str, described: dict[str, Any] | None = None) -> ExecutionResult:
    """The execution's status, input/output and visited states (running or finished)."""
    described = described or sfn.describe_execution(executionArn=execution_arn)
    output = described.get("output")
    stop = described.get("stopDate")
    events = history(sfn, execution_arn)
    return ExecutionResult(
        arn=execution_arn,
        status=described["status"],
        output=json.loads(output) if output else None,
        error=described.get("error"),
        cause=described.get("cause"),
        states=summarize_history(events),
        duration_s=(stop - described["startDate"]).total_seconds() if stop else None,
        input=_json(described.get("input")),
        last_output=last_state_output(events),
    )


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def run_definition(
    sfn: Any, definition: dict[str, Any], execution_input: Any = None, timeout: float = 60.0
) -> ExecutionResult:
    """Create a throwaway state machine from `definition`, execute it and wait (tests, experiments)."""
    arn = sfn.create_state_machine(
        name=f"adhoc-{time.time_ns()}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/adhoc",
    )["stateMachineArn"]
    started = sfn.start_execution(stateMachineArn=arn, input=json.dumps(execution_input or {}))
    return wait_for_execution(sfn, started["executionArn"], timeout=timeout)
