"""Step Functions quotas and terminal errors that moto 5.2.5 does not enforce, enforced as AWS documents them.

moto's interpreter already fails a state whose output or a task whose result exceeds 256 KiB with
`States.DataLimitExceeded` (`moto.stepfunctions.parser.quotas`). What it lets through, and this module
closes:

1. **StartExecution input over 256 KiB** is accepted. AWS rejects the call: the `input` member is limited
   to 262,144 and payloads to "256 KiB of data as a UTF-8 encoded string"
   (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html,
   https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html). Here: `ValidationException`
   in AWS's constraint wording, before an execution exists.
   Likewise an aws-sdk task whose Parameters exceed 256 KiB runs; AWS reports `States.DataLimitExceeded`
   "when, after Parameters processing, the input of a state is larger than the payload size quota"
   (error-handling page below). Here: the task fails with that error before the call is made.
2. **`States.ALL` catches and retries `States.DataLimitExceeded` and `States.Runtime`.** AWS: "This error
   type can't catch the States.DataLimitExceeded terminal error type and runtime error types"
   (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html#error-handling-error-representation).
   A `Catch` on `States.ALL` would route an oversized result to a failure branch offline, while on AWS the
   execution fails outright. Here: `States.ALL` matches neither; naming them explicitly still does.
3. **No history limit.** AWS keeps at most 25,000 events; "If the event number 25,000 isn't
   ExecutionSucceeded, the ExecutionFailed event is logged and the state machine execution fails"
   (https://docs.aws.amazon.com/step-functions/latest/dg/bp-history-limit.html). AWS documents no error
   name for it; the emulator fails with `States.Runtime` (uncatchable, like the real failure) and the cause
   AWS prints: "The execution reached the maximum number of history events (25000)."

`apply()` is called by `lake.local.moto_compat.apply()`; the symbols patched here are listed in
`moto_compat.PATCHED_SYMBOLS`, so a moto upgrade that moves them fails loudly.
"""

from __future__ import annotations

import importlib
from typing import Any

MAX_PAYLOAD_BYTES = 256 * 1024  # execution input, state input/output, task result (UTF-8 bytes)
MAX_HISTORY_EVENTS = 25_000
HISTORY_LIMIT_CAUSE = f"The execution reached the maximum number of history events ({MAX_HISTORY_EVENTS})."
TERMINAL_ERRORS = ("States.DataLimitExceeded", "States.Runtime")  # never matched by States.ALL

_PARSER = "moto.stepfunctions.parser"
_EXECUTION_END_EVENTS = ("ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut")


class HistoryLimitReached(RuntimeError):
    """Raised inside the interpreter when an execution would record more than 25,000 events."""


def payload_bytes(text: str | None) -> int:
    return len((text or "").encode("utf-8"))


def apply() -> None:
    _limit_start_execution_input()
    _limit_task_parameters()
    _states_all_skips_terminal_errors()
    _limit_history_events()


def _limit_start_execution_input() -> None:
    cls = importlib.import_module(f"{_PARSER}.models").StepFunctionsParserBackend
    original = cls.start_execution
    if getattr(original, "_lake_quota", False):
        return
    from moto.stepfunctions.exceptions import ValidationException

    def start_execution(self, state_machine_arn, name=None, execution_input=None, trace_header=None):
        size = payload_bytes(execution_input)
        if size > MAX_PAYLOAD_BYTES:
            raise ValidationException(
                "1 validation error detected: Value at 'input' failed to satisfy constraint: Member must have "
                f"length less than or equal to {MAX_PAYLOAD_BYTES} (the input is {size} bytes of UTF-8)"
            )
        return original(self, state_machine_arn, name, execution_input, trace_header)

    start_execution._lake_quota = True  # type: ignore[attr-defined]
    cls.start_execution = start_execution


def _limit_task_parameters() -> None:
    """AWS also fails a task "when, after Parameters processing, the input of a state is larger than the payload
    size quota"; moto checks only results. The service task's own check raises the same DataLimitExceeded."""
    cls = importlib.import_module(f"{_PARSER}.asl.component.state.exec.state_task.service.state_task_service_aws_sdk")
    cls = cls.StateTaskServiceAwsSdk
    original = cls._eval_service_task
    if getattr(original, "_lake_quota", False):
        return

    def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):
        self._verify_size_quota(env=env, value=normalised_parameters)
        return original(self, env, resource_runtime_part, normalised_parameters, state_credentials)

    _eval_service_task._lake_quota = True  # type: ignore[attr-defined]
    cls._eval_service_task = _eval_service_task


def _states_all_skips_terminal_errors() -> None:
    mod = importlib.import_module(f"{_PARSER}.asl.component.common.error_name.error_equals_decl")
    cls = mod.ErrorEqualsDecl
    original = cls._eval_body
    if getattr(original, "_lake_quota", False):
        return
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName

    def _eval_body(self, env: Any) -> None:
        error_name = env.stack[-1]
        terminal = isinstance(error_name, StatesErrorName) and error_name.error_name in TERMINAL_ERRORS
        if terminal and cls._STATE_ALL_ERROR in self.error_names:
            env.stack.pop()
            env.stack.append(error_name in [n for n in self.error_names if n != cls._STATE_ALL_ERROR])
            return
        original(self, env)

    _eval_body._lake_quota = True  # type: ignore[attr-defined]
    cls._eval_body = _eval_body


def _limit_history_events() -> None:
    cls = importlib.import_module(f"{_PARSER}.asl.eval.event.event_manager").EventManager
    original = cls.add_event
    if getattr(original, "_lake_quota", False):
        return

    def add_event(self, context, event_type, event_details=None, timestamp=None, update_source_event_id=True):
        next_event = len(self._history_event_list) + 1
        if next_event >= MAX_HISTORY_EVENTS and str(_type_name(event_type)) not in _EXECUTION_END_EVENTS:
            raise HistoryLimitReached(HISTORY_LIMIT_CAUSE)
        return original(self, context, event_type, event_details, timestamp, update_source_event_id)

    add_event._lake_quota = True  # type: ignore[attr-defined]
    cls.add_event = add_event
    _report_history_limit_as_aws_does()


def _type_name(event_type: Any) -> str:
    return getattr(event_type, "value", event_type)


def _report_history_limit_as_aws_does() -> None:
    """The interpreter turns unexpected exceptions into States.Runtime with cause `Type(message)`; give the
    history limit AWS's cause text instead, where the execution's error is set."""
    env_cls = importlib.import_module(f"{_PARSER}.asl.eval.environment").Environment
    set_error = env_cls.set_error
    if getattr(set_error, "_lake_quota", False):
        return

    def patched_set_error(self, error):
        cause = error.get("cause") or ""
        if HISTORY_LIMIT_CAUSE in cause:
            error = {**error, "error": "States.Runtime", "cause": HISTORY_LIMIT_CAUSE}
        return set_error(self, error)

    patched_set_error._lake_quota = True  # type: ignore[attr-defined]
    env_cls.set_error = patched_set_error
