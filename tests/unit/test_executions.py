"""Execution histories summarised as the console shows them: which state an error belongs to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lake.executions import summarize_history

START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def _history(*rows: tuple) -> list[dict]:
    """(id, previousEventId, type, details) rows -> history events one second apart, as GetExecutionHistory
    returns them."""
    events = []
    for index, (event_id, previous, kind, details) in enumerate(rows):
        event = {"type": kind, "timestamp": START + timedelta(seconds=index)}
        if event_id is not None:
            event.update(id=event_id, previousEventId=previous)
        event.update(details)
        events.append(event)
    return events


def _entered(name: str) -> dict:
    return {"stateEnteredEventDetails": {"name": name}}


def _exited(name: str) -> dict:
    return {"stateExitedEventDetails": {"name": name}}


def test_summarize_history__concurrent_map_iterations_get_their_own_errors_and_durations():
    """Iteration 0's lookup fails (caught) after iteration 1 has already entered its next state: the error is
    iteration 0's `Get`, found through the event's previousEventId chain, not the last state entered."""
    events = _history(
        (1, 0, "ExecutionStarted", {}),
        (2, 1, "MapStateEntered", _entered("Check")),
        (3, 2, "MapStateStarted", {}),
        (4, 3, "MapIterationStarted", {}),
        (5, 3, "MapIterationStarted", {}),
        (6, 4, "TaskStateEntered", _entered("Get")),  # iteration 0
        (7, 5, "TaskStateEntered", _entered("Get")),  # iteration 1
        (8, 6, "TaskScheduled", {}),
        (9, 7, "TaskScheduled", {}),
        (10, 8, "TaskStarted", {}),
        (11, 9, "TaskStarted", {}),
        (12, 11, "TaskSucceeded", {}),
        (13, 12, "TaskStateExited", _exited("Get")),  # iteration 1
        (14, 13, "PassStateEntered", _entered("Known")),  # iteration 1
        (15, 10, "TaskFailed", {"taskFailedEventDetails": {"error": "Glue.EntityNotFoundException", "cause": "no"}}),
        (16, 15, "TaskStateExited", _exited("Get")),  # iteration 0, caught
        (17, 16, "PassStateEntered", _entered("Missing")),
        (18, 14, "PassStateExited", _exited("Known")),
        (19, 17, "PassStateExited", _exited("Missing")),
        (20, 18, "MapIterationSucceeded", {}),
        (21, 19, "MapIterationSucceeded", {}),
        (22, 21, "MapStateSucceeded", {}),
        (23, 22, "MapStateExited", _exited("Check")),
        (24, 23, "ExecutionSucceeded", {}),
    )
    states = summarize_history(events)
    assert [(s.name, s.error) for s in states] == [
        ("Check", None), ("Get", "Glue.EntityNotFoundException"), ("Get", None), ("Known", None), ("Missing", None),
    ]  # fmt: skip
    by_entry = {(s.name, s.error): s.duration_s for s in states}
    assert by_entry[("Get", "Glue.EntityNotFoundException")] == 10.0  # entered at event 6, exited at event 16
    assert by_entry[("Get", None)] == 6.0  # entered at event 7, exited at event 13
    assert all(s.in_map_iteration for s in states[1:]) and not states[0].in_map_iteration


def test_summarize_history__uncaught_failure_and_the_execution_failure_name_the_task_once():
    events = _history(
        (1, 0, "ExecutionStarted", {}),
        (2, 1, "TaskStateEntered", _entered("Run ETL job")),
        (3, 2, "TaskScheduled", {}),
        (4, 3, "TaskFailed", {"taskFailedEventDetails": {"error": "States.TaskFailed", "cause": "job failed"}}),
        (5, 4, "ExecutionFailed", {"executionFailedEventDetails": {"error": "States.TaskFailed", "cause": "x"}}),
    )
    (state,) = summarize_history(events)
    assert (state.name, state.error, state.cause, state.duration_s) == ("Run ETL job", "States.TaskFailed",
                                                                         "job failed", 3.0)  # fmt: skip


def test_summarize_history__fail_state_gets_the_execution_error():
    events = _history(
        (1, 0, "ExecutionStarted", {}),
        (2, 1, "ChoiceStateEntered", _entered("All partitions passed?")),
        (3, 2, "ChoiceStateExited", _exited("All partitions passed?")),
        (4, 3, "FailStateEntered", _entered("Data quality failed")),
        (5, 4, "ExecutionFailed", {"executionFailedEventDetails": {"error": "DataQualityFailed", "cause": "see"}}),
    )
    assert [(s.name, s.error) for s in summarize_history(events)] == [
        ("All partitions passed?", None), ("Data quality failed", "DataQualityFailed"),
    ]  # fmt: skip


def test_summarize_history__without_event_ids_an_error_goes_to_the_last_state_entered():
    events = _history(
        (None, None, "TaskStateEntered", _entered("Get")),
        (None, None, "TaskFailed", {"taskFailedEventDetails": {"error": "Glue.ThrottlingException"}}),
        (None, None, "TaskStateExited", _exited("Get")),
        (None, None, "PassStateEntered", _entered("Next")),
        (None, None, "PassStateExited", _exited("Next")),
    )
    assert [(s.name, s.error, s.duration_s) for s in summarize_history(events)] == [
        ("Get", "Glue.ThrottlingException", 2.0), ("Next", None, 1.0),
    ]  # fmt: skip
