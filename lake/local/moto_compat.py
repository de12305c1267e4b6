"""Every workaround for moto 5.2.5 needed to execute real Step Functions definitions offline.

moto runs state machines with LocalStack's ASL interpreter (`moto.stepfunctions.parser`) only when
`default_user_config["stepfunctions"]["execute_state_machine"]` is true (what
`@mock_aws(config={"stepfunctions": {"execute_state_machine": True}})` sets; `enable_execution()` sets it
in-process for a `ThreadedMotoServer`). Each patch below names the defect it fixes; each was confirmed
by a failing reproduction in `tests/unit/test_moto_compat.py`.

`apply()` is idempotent. `check()` raises `MotoCompatError` when moto is not 5.2.5 or when a patched
symbol is missing or has another signature: the patches copy moto internals and must be re-verified
before moto is upgraded.
"""

from __future__ import annotations

import datetime
import importlib
import inspect
import json
import threading
import time
import types
import uuid
from typing import Any

from lake.local import quotas

PINNED_MOTO_VERSION = "5.2.5"

_SVC = "moto.stepfunctions.parser.asl.component.state.exec.state_task.service"
_CALLBACK = f"{_SVC}.state_task_service_callback"
_GLUE = f"{_SVC}.state_task_service_glue"
_AWS_SDK = f"{_SVC}.state_task_service_aws_sdk"
_SFN = f"{_SVC}.state_task_service_sfn"

# (module, attribute path, expected parameter names) of every symbol patched or relied upon.
# The modules that evaluate JSONata, each through its own imported name of `eval_jsonata_expression`.
_JSONATA_CALLERS = (
    "moto.stepfunctions.parser.asl.component.common.string.string_expression",
    "moto.stepfunctions.parser.asl.jsonata.validations",
)
_PREPROCESSOR = "moto.stepfunctions.parser.asl.parse.preprocessor"
PATCHED_SYMBOLS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (_PREPROCESSOR, "Preprocessor._query_language_per_scope", ()),
    (
        _CALLBACK,
        "StateTaskServiceCallback._eval_integration_pattern",
        ("self", "env", "resource_runtime_part", "normalised_parameters", "state_credentials"),
    ),
    (
        _CALLBACK,
        "StateTaskServiceCallback._eval_sync",
        ("self", "env", "sync_resolver", "timeout_seconds", "callback_endpoint", "heartbeat_endpoint"),
    ),
    (
        _AWS_SDK,
        "StateTaskServiceAwsSdk._normalise_service_error_name",
        ("service_name",),
    ),
    (
        _AWS_SDK,
        "StateTaskServiceAwsSdk._eval_service_task",
        ("self", "env", "resource_runtime_part", "normalised_parameters", "state_credentials"),
    ),
    (
        _SFN,
        "StateTaskServiceSfn._eval_service_task",
        ("self", "env", "resource_runtime_part", "normalised_parameters", "state_credentials"),
    ),
    (_GLUE, "_JOB_RUN_STATE_ABNORMAL_TERMINAL_VALUE", ()),
    ("moto.stepfunctions.responses", "json.dumps", ()),
    (
        "moto.stepfunctions.parser.models",
        "StepFunctionsParserBackend.start_execution",
        ("self", "state_machine_arn", "name", "execution_input", "trace_header"),
    ),
    (
        "moto.stepfunctions.parser.backend.execution_worker",
        "ExecutionWorker._get_evaluation_environment",
        ("self",),
    ),
    *((module, "eval_jsonata_expression", ("jsonata_expression",)) for module in _JSONATA_CALLERS),
    # Hooked by glue_runtime.py / crawler.py / sns_outbox.py:
    (
        "moto.glue.models",
        "FakeJob.start_job_run",
        (
            "self",
            "allocated_capacity",
            "max_capacity",
            "timeout",
            "worker_type",
            "security_configuration",
            "number_of_workers",
            "notification_property",
            "previous_run_id",
            "arguments",
        ),
    ),
    ("moto.glue.models", "FakeJobRun.as_dict", ("self",)),
    ("moto.glue.models", "FakeCrawler.start_crawler", ("self",)),
    ("moto.glue.models", "FakeCrawler.as_dict", ("self",)),
    (
        "moto.sns.models",
        "SNSBackend.publish",
        (
            "self",
            "message",
            "arn",
            "phone_number",
            "subject",
            "message_attributes",
            "group_id",
            "deduplication_id",
            "message_structure",
        ),
    ),
    ("moto.stepfunctions.responses", "StepFunctionResponse.describe_execution", ("self",)),
    # Wrapped by quotas.py:
    (
        "moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl",
        "ErrorEqualsDecl._eval_body",
        ("self", "env"),
    ),
    (
        "moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl",
        "ErrorEqualsDecl._STATE_ALL_ERROR",
        (),
    ),
    (
        "moto.stepfunctions.parser.asl.eval.event.event_manager",
        "EventManager.add_event",
        ("self", "context", "event_type", "event_details", "timestamp", "update_source_event_id"),
    ),
    ("moto.stepfunctions.parser.asl.eval.environment", "Environment.set_error", ("self", "error")),
    (f"{_SVC}.state_task_service", "StateTaskService._verify_size_quota", ("self", "env", "value")),
    # Subclassed by strict_event_pattern() (defect 8), which the offline trigger and status rules match with:
    ("moto.events.models", "EventPattern._does_item_match_filters", ("self", "item", "filters")),
    ("moto.events.models", "EventPattern._does_item_match_named_filter", ("item", "pattern")),
    ("moto.events.models", "EventPattern.load", ("raw_pattern",)),
    ("moto.events.models", "UNDEFINED", ()),
)

# AWS names aws-sdk integration errors `<Service>.<Exception>`, the service as in the resource ARN in
# PascalCase (`Glue.EntityNotFoundException`, `S3.NoSuchKeyException`, `DynamoDb.…`, `Sfn.…`).
SERVICE_ERROR_NAMES = {
    "dynamodb": "DynamoDb",
    "sfn": "Sfn",
    "s3": "S3",
    "glue": "Glue",
    "sns": "Sns",
    "sqs": "Sqs",
    "athena": "Athena",
    "lambda": "Lambda",
    "eventbridge": "EventBridge",
    "secretsmanager": "SecretsManager",
    "cloudwatch": "CloudWatch",
    "ssm": "Ssm",
    "kms": "Kms",
    "iam": "Iam",
    "sts": "Sts",
    "ec2": "Ec2",
    "ecs": "Ecs",
}

_lock = threading.Lock()
_applied = False


class MotoCompatError(RuntimeError):
    """moto changed under the patches: re-verify every defect before upgrading."""


def _resolve(module: str, path: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def check(symbols: tuple[tuple[str, str, tuple[str, ...]], ...] = PATCHED_SYMBOLS) -> None:
    """Raise MotoCompatError if moto is not the pinned version or a patched symbol changed."""
    import moto

    if moto.__version__ != PINNED_MOTO_VERSION:
        raise MotoCompatError(
            f"lake.local.moto_compat targets moto {PINNED_MOTO_VERSION}, found {moto.__version__}: "
            "re-verify every patch in lake/local/moto_compat.py"
        )
    for module, path, params in symbols:
        try:
            target = _resolve(module, path)
        except (ImportError, AttributeError) as exc:
            raise MotoCompatError(f"moto symbol {module}.{path} no longer exists ({exc})") from exc
        if not params:
            continue
        found = tuple(inspect.signature(inspect.unwrap(target)).parameters)
        if found != params:
            raise MotoCompatError(f"moto symbol {module}.{path} changed signature: {found} != {params}")


def enable_execution() -> None:
    """Make moto's Step Functions backend execute definitions (the in-process form of the mock_aws config)."""
    from moto.core.config import default_user_config

    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True


def apply() -> None:
    """Install every patch once (idempotent, thread-safe)."""
    global _applied
    with _lock:
        if _applied:
            return
        check()
        _patch_sync_without_callback_endpoint()
        _patch_glue_sync_terminal_states()
        _patch_aws_sdk_error_names()
        _patch_aws_sdk_streaming_body()
        _patch_start_execution_parameter_names()
        _patch_describe_execution_datetimes()
        _patch_unnamed_executions()
        _patch_context_start_time()
        _patch_jsonata_evaluation()
        _patch_query_language_scopes_per_parse()
        quotas.apply()  # after _patch_unnamed_executions: both wrap start_execution
        _applied = True


def is_applied() -> bool:
    return _applied


# Defect 1: `arn:aws:states:::glue:startJobRun.sync` (any `.sync` resource whose service does not
# support `.waitForTaskToken`) crashes with States.Runtime "'NoneType' object has no attribute
# 'interrupt_all'": `_eval_integration_pattern` calls `callback_endpoint.interrupt_all()` in a `finally`
# although the endpoint is None. Fix: a copy of the method that guards the call; outcome handling is
# unchanged.
def _patch_sync_without_callback_endpoint() -> None:
    mod = importlib.import_module(_CALLBACK)
    cls = mod.StateTaskServiceCallback
    original = cls._eval_integration_pattern
    if getattr(original, "_lake_patched", False):
        return

    def _eval_integration_pattern(self, env, resource_runtime_part, normalised_parameters, state_credentials):
        task_output = env.stack.pop()
        callback_endpoint = None
        if mod.ResourceCondition.WaitForTaskToken in self._supported_integration_patterns:
            callback_id = env.states.context_object.context_object_data["Task"]["Token"]
            callback_endpoint = env.callback_pool_manager.get(callback_id)
        self.timeout.eval(env=env)
        timeout_seconds = env.stack.pop()
        heartbeat_endpoint = None
        if self.heartbeat:
            self.heartbeat.eval(env=env)
            heartbeat_seconds = env.stack.pop()
            heartbeat_endpoint = callback_endpoint.setup_heartbeat_endpoint(heartbeat_seconds=heartbeat_seconds)
        try:
            if self.resource.condition == mod.ResourceCondition.WaitForTaskToken:
                outcome = self._eval_wait_for_task_token(
                    env=env,
                    timeout_seconds=timeout_seconds,
                    callback_endpoint=callback_endpoint,
                    heartbeat_endpoint=heartbeat_endpoint,
                )
            else:
                env.stack.append(task_output)
                build = (
                    self._build_sync_resolver
                    if self.resource.condition == mod.ResourceCondition.Sync
                    else self._build_sync2_resolver
                )
                sync_resolver = build(
                    env=env,
                    resource_runtime_part=resource_runtime_part,
                    normalised_parameters=normalised_parameters,
                    state_credentials=state_credentials,
                )
                outcome = self._eval_sync(
                    env=env,
                    timeout_seconds=timeout_seconds,
                    callback_endpoint=callback_endpoint,
                    heartbeat_endpoint=heartbeat_endpoint,
                    sync_resolver=sync_resolver,
                )
        except Exception as integration_exception:
            outcome = integration_exception
        finally:
            if callback_endpoint is not None:  # the fix
                callback_endpoint.interrupt_all()
        _raise_or_push_outcome(mod, env, outcome)

    _eval_integration_pattern._lake_patched = True  # type: ignore[attr-defined]
    cls._eval_integration_pattern = _eval_integration_pattern


def _raise_or_push_outcome(mod: Any, env: Any, outcome: Any) -> None:
    if isinstance(outcome, mod.CallbackOutcomeTimedOut):
        raise mod.CallbackTimeoutError()
    if isinstance(outcome, mod.HeartbeatTimedOut):
        raise mod.HeartbeatTimeoutError()
    if isinstance(outcome, mod.CallbackOutcomeFailure):
        raise mod.CallbackOutcomeFailureError(callback_outcome_failure=outcome)
    if isinstance(outcome, mod.CallbackOutcomeSuccess):
        env.stack.append(json.loads(outcome.output))
    elif isinstance(outcome, Exception):
        raise outcome
    else:
        env.stack.append(outcome)


# Defect 1 (cont.): AWS fails a `glue:startJobRun.sync` task with States.TaskFailed for every terminal
# state but SUCCEEDED; moto treats STOPPED as success. The resolver reads this module-level set.
def _patch_glue_sync_terminal_states() -> None:
    glue = importlib.import_module(_GLUE)
    glue._JOB_RUN_STATE_ABNORMAL_TERMINAL_VALUE.add("STOPPED")


# Defect 3: aws-sdk integration errors are named after the lowercase ARN service (`glue.X`) instead of
# AWS's PascalCase (`Glue.CrawlerRunningException`), so `Catch`/`Retry` on the AWS name never match.
def _patch_aws_sdk_error_names() -> None:
    cls = importlib.import_module(_AWS_SDK).StateTaskServiceAwsSdk
    if getattr(cls._normalise_service_error_name, "_lake_patched", False):
        return

    def _normalise_service_error_name(service_name: str) -> str:
        lower = service_name.lower()
        return SERVICE_ERROR_NAMES.get(lower, service_name[:1].upper() + service_name[1:])

    _normalise_service_error_name._lake_patched = True  # type: ignore[attr-defined]
    cls._normalise_service_error_name = staticmethod(_normalise_service_error_name)


# Defect 5 (new): `arn:aws:states:::aws-sdk:s3:getObject` fails with States.Runtime "'StreamingChecksumBody'
# object has no attribute 'strip'": the boto3 streaming body reaches the JSON layer. AWS returns the
# body as a string. Fix: read streaming values of the response into text.
def _patch_aws_sdk_streaming_body() -> None:
    cls = importlib.import_module(_AWS_SDK).StateTaskServiceAwsSdk
    original = cls._eval_service_task
    if getattr(original, "_lake_patched", False):
        return

    def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):
        original(self, env, resource_runtime_part, normalised_parameters, state_credentials)
        response = env.stack[-1]
        if isinstance(response, dict):
            for key, value in list(response.items()):
                if hasattr(value, "read") and callable(value.read):
                    data = value.read()
                    response[key] = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data

    _eval_service_task._lake_patched = True  # type: ignore[attr-defined]
    cls._eval_service_task = _eval_service_task


# Defect 6 (new): `arn:aws:states:::states:startExecution` fails with States.Runtime "'StateMachineArn'": the
# ASL parameter names (StateMachineArn, Input, Name, TraceHeader) reach boto3, which expects camelCase,
# and boto3's camelCase response reaches the state (AWS returns ExecutionArn and StartDate).
_START_EXECUTION_PARAMETERS = {"StateMachineArn": "stateMachineArn", "Input": "input", "Name": "name",
                               "TraceHeader": "traceHeader"}  # fmt: skip


def _patch_start_execution_parameter_names() -> None:
    cls = importlib.import_module(_SFN).StateTaskServiceSfn
    original = cls._eval_service_task
    if getattr(original, "_lake_patched", False):
        return

    def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):
        if self._get_boto_service_action() != "start_execution":
            return original(self, env, resource_runtime_part, normalised_parameters, state_credentials)
        parameters = {_START_EXECUTION_PARAMETERS.get(k, k): v for k, v in normalised_parameters.items()}
        original(self, env, resource_runtime_part, parameters, state_credentials)
        response = env.stack.pop()
        env.stack.append({key[:1].upper() + key[1:]: value.isoformat() if isinstance(value, datetime.datetime)
                          else value for key, value in response.items()})  # fmt: skip

    _eval_service_task._lake_patched = True  # type: ignore[attr-defined]
    cls._eval_service_task = _eval_service_task


# Defect 2: DescribeExecution answers HTTP 500 "Object of type datetime is not JSON serializable" when the
# output holds datetimes (the GetJobRun result of `glue:startJobRun.sync`): `responses.py` calls plain
# `json.dumps(execution.output)`. Fix: the module's `json` becomes one whose `dumps` encodes datetimes
# as ISO-8601 strings (what the interpreter's own `to_json_str` does for the history).
class _DateTimeJson(types.ModuleType):
    def __init__(self) -> None:
        super().__init__("json")
        self.__dict__.update({k: v for k, v in vars(json).items() if not k.startswith("__") and k != "dumps"})

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("default", _json_default)
        return json.dumps(obj, **kwargs)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    return str(value)


def _patch_describe_execution_datetimes() -> None:
    responses = importlib.import_module("moto.stepfunctions.responses")
    if not isinstance(responses.json, _DateTimeJson):
        responses.json = _DateTimeJson()


# Defect 6 (new): with execution enabled, StartExecution without `name` names the execution "None"
# (`...:execution:<machine>:None`), so the second unnamed start of a state machine raises
# ExecutionAlreadyExists. AWS generates a UUID. Fix: generate one when no name is given.
def _patch_unnamed_executions() -> None:
    cls = importlib.import_module("moto.stepfunctions.parser.models").StepFunctionsParserBackend
    original = cls.start_execution
    if getattr(original, "_lake_patched", False):
        return

    def start_execution(self, state_machine_arn, name=None, execution_input=None, trace_header=None):
        return original(self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header)

    start_execution._lake_patched = True  # type: ignore[attr-defined]
    cls.start_execution = start_execution


# Defect 7 (new): the context object's `$$.Execution.StartTime` is a Python datetime, so any
# States.Format or JSON serialisation of it fails with "Object of type datetime is not JSON serializable".
# AWS provides an ISO 8601 string in milliseconds, as DescribeExecution's startDate ("2019-03-26T20:14:13.192Z",
# https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html). Fix: convert it when the
# evaluation environment is built.
def _patch_context_start_time() -> None:
    cls = importlib.import_module("moto.stepfunctions.parser.backend.execution_worker").ExecutionWorker
    original = cls._get_evaluation_environment
    if getattr(original, "_lake_patched", False):
        return

    def _get_evaluation_environment(self):
        env = original(self)
        execution = env.states.context_object.context_object_data["Execution"]
        if hasattr(execution.get("StartTime"), "isoformat"):
            start = execution["StartTime"].astimezone(datetime.UTC)
            execution["StartTime"] = start.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return env

    _get_evaluation_environment._lake_patched = True  # type: ignore[attr-defined]
    cls._get_evaluation_environment = _get_evaluation_environment


# Defect 9 (new): JSONata states (`"QueryLanguage": "JSONata"`) parse, but every expression fails: moto's
# evaluator is a stub (`_eval_jsonata = None`; LocalStack runs jsonata-java in a JVM, which moto does not ship).
# AWS implements the JSONata 2.0.6 specification
# (https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html). Fix: evaluate with jsonata-python
# (pinned in requirements.lock), a Python implementation of that specification; its regexes run on Python's `re`,
# which differs from JavaScript's on line breaks, so the pipeline's expressions use none. moto binds $states and
# variables by prefixing `$name := value;` declarations to the expression, which it accepts.
def _patch_jsonata_evaluation() -> None:
    import jsonata

    def eval_jsonata_expression(jsonata_expression: str) -> Any:
        from moto.stepfunctions.parser.asl.jsonata.jsonata import JSONataException

        try:
            return jsonata.Jsonata(jsonata_expression).evaluate(None)
        except Exception as error:  # AWS reports any evaluation failure as States.QueryEvaluationError
            raise JSONataException("UNKNOWN", str(error)) from error

    for module in _JSONATA_CALLERS:
        importlib.import_module(module).eval_jsonata_expression = eval_jsonata_expression


# Defect 10 (new): every execution parses its definition in its own thread, and the ASL preprocessor keeps its
# stack of query-language scopes in a class attribute (`Preprocessor._query_language_per_scope = []`) that every
# parse shares: two executions parsed at once push and pop each other's scopes, and one fails with "Unsupported
# declaration in QueryLanguage=JSONata block" (or JSONPath) although its definition is valid (bench/burst.py's
# concurrent executions hit it; four threads parsing two small definitions failed 55 of 120 parses). On AWS a valid
# definition never fails to parse. Fix: each preprocessor (one per parse) gets a stack of its own.
def _patch_query_language_scopes_per_parse() -> None:
    cls = importlib.import_module(_PREPROCESSOR).Preprocessor
    if isinstance(cls.__dict__.get("_query_language_per_scope"), property):
        return

    def scopes(self: Any) -> list[Any]:
        return self.__dict__.setdefault("_lake_query_language_per_scope", [])

    cls._query_language_per_scope = property(scopes)


# Defect 8 (new): moto's EventBridge matcher lets `anything-but` match a JSON null (`null not in [...]` is true),
# so a rule `"error": [{"anything-but": [...]}]` matched the `"error": null` of a timed-out or aborted execution
# offline, and a test could not tell whether a rule that relies on it reports those executions on AWS.
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html documents: a null value is
# matched by `[null]` only, not by `[""]` (eb-event-patterns-null-values.html); anything-but takes strings or numbers
# (and prefix/suffix/equals-ignore-case/wildcard, which are string operators); exists matches on the presence or
# absence of a leaf field. It does not say whether anything-but or exists matches a null (or anything-but a boolean,
# or a number against string values). Where it is silent this matcher takes the stricter answer, so that nothing
# matches offline that might not match on AWS: anything-but matches only a value of its own type (a string, or a
# non-boolean number for numeric values), never null or a boolean; a null field matches neither `exists: true` nor
# `exists: false`; numeric never matches a boolean. Everything else is moto's matcher.
_strict_pattern_class: Any = None


def strict_event_pattern() -> Any:
    """moto's EventPattern with defect 8 fixed: `strict_event_pattern().load(json_text).matches_event(event)`."""
    global _strict_pattern_class
    if _strict_pattern_class is not None:
        return _strict_pattern_class
    models = importlib.import_module("moto.events.models")
    base, undefined = models.EventPattern, models.UNDEFINED

    def _single(item: Any, name: str, value: Any) -> bool:
        if name == "anything-but":
            if isinstance(value, dict):
                wanted: tuple[type, ...] = (str,)
            else:
                values = value if isinstance(value, list) else [value]
                numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
                wanted = (int, float) if numeric else (str,)
            if item is None or isinstance(item, bool) or not isinstance(item, wanted):
                return False
        elif name == "numeric" and isinstance(item, bool):
            return False
        return base._does_item_match_named_filter(item, {name: value})

    class StrictEventPattern(base):  # type: ignore[misc, valid-type]
        @staticmethod
        def _does_item_match_named_filter(item: Any, pattern: dict[str, Any]) -> bool:
            name, value = next(iter(pattern.items()))
            if name == "exists":
                return item is not None and (item is not undefined) == value
            if item is undefined:
                return False
            if isinstance(item, list):
                return any(_single(element, name, value) for element in item)
            return _single(item, name, value)

    _strict_pattern_class = StrictEventPattern
    return StrictEventPattern


def wait_until(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    """Poll `predicate()` until true or `timeout` seconds passed; returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
