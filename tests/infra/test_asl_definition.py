"""The synthesized state machine definition, checked as Amazon States Language.

Three checks, each with a test proving it can fail:

* asl-validator (npm, pinned in package.json, run by tests/infra/asl_validate.js): the ASL JSON schema, state
  transitions, terminal states, payload templates, JSONPath and intrinsic function syntax, Task ARNs.
* Every intrinsic function is one AWS documents.
* Every JSONPath uses only the syntax AWS documents, and the fields that take a Reference Path get one.

The definition is a CloudFormation Fn::Join around Ref tokens (the partition, the topic, jobs, crawler, buckets).
The tokens are replaced by the deterministic local identities of lake.local.template, so the validator sees
concrete ARNs of the right shape.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lake.local.template import Resolver

REPO_ROOT = Path(__file__).resolve().parents[2]
VALIDATOR_SCRIPT = Path(__file__).with_name("asl_validate.js")
VALIDATOR_PACKAGE = REPO_ROOT / "node_modules" / "asl-validator" / "package.json"
# Stage -> the conftest fixture holding its synthesized template.
STAGE_TEMPLATES = {"dev": "template_json", "prod": "prod_template_json"}
STAGES = tuple(STAGE_TEMPLATES)

# https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html
DOCUMENTED_INTRINSICS = frozenset(
    {
        "States.Format",
        "States.StringToJson",
        "States.JsonToString",
        "States.Array",
        "States.ArrayPartition",
        "States.ArrayContains",
        "States.ArrayRange",
        "States.ArrayGetItem",
        "States.ArrayLength",
        "States.ArrayUnique",
        "States.Base64Encode",
        "States.Base64Decode",
        "States.Hash",
        "States.JsonMerge",
        "States.MathRandom",
        "States.MathAdd",
        "States.StringSplit",
        "States.UUID",
    }
)
_INTRINSIC_CALL = re.compile(r"\b(States\.[A-Za-z0-9_]+)\s*\(")

# State fields whose value is a Path (any documented JsonPath) or a Reference Path (a single node). The split is
# the Amazon States Language's, as asl-validator's schemas encode it. ResultPath is a Reference Path on the state
# input only: no context object ($$) and no variables.
PATH_FIELDS = frozenset({"InputPath", "OutputPath"})
REFERENCE_PATH_FIELDS = frozenset(
    {
        "ItemsPath",
        "SecondsPath",
        "TimestampPath",
        "TimeoutSecondsPath",
        "HeartbeatSecondsPath",
        "MaxConcurrencyPath",
        "ToleratedFailureCountPath",
        "ToleratedFailurePercentagePath",
    }
)
NESTED_REFERENCE_PATH_FIELDS = {
    "ItemReader": ("ReaderConfig", ("MaxItemsPath",)),
    "ItemBatcher": (None, ("MaxItemsPerBatchPath", "MaxInputBytesPerBatchPath")),
}
# Fail states: a Reference Path or an intrinsic function.
PATH_OR_INTRINSIC_FIELDS = frozenset({"ErrorPath", "CausePath"})
# Fields that hold nested state machines (checked as states of their own) or literal JSON (Pass `Result`: keys
# ending in `.$` are not evaluated there).
_NOT_PAYLOAD = frozenset({"Branches", "ItemProcessor", "Iterator", "Result"})

# JsonPath syntax, one segment at a time. Dot notation takes only the JsonPath member-name-shorthand; anything else
# needs brackets (https://docs.aws.amazon.com/step-functions/latest/dg/amazon-states-language-paths.html).
_NAME = r"(?:[A-Za-z_]|[^\x00-\x7f])(?:[A-Za-z0-9_]|[^\x00-\x7f])*"
_QUOTED = r"""(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
_ROOT = re.compile(rf"\$\$|\${_NAME}|\$")
_SEGMENTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a function call", re.compile(rf"\.{_NAME}\(\s*\)")),
    ("deep scan `..`", re.compile(rf"\.\.(?:{_NAME}|\*|(?=\[))")),
    ("a wildcard `*`", re.compile(r"\.\*|\[\s*\*\s*\]")),
    ("field", re.compile(rf"\.{_NAME}")),
    ("a filter `[?(...)]` / `@`", re.compile(r"\[\s*\?\(.*?\)\s*\]")),
    ("a slice `:`", re.compile(r"\[\s*-?\d*\s*:\s*-?\d*\s*(?::\s*-?\d*\s*)?\]")),
    ("a union `,`", re.compile(rf"\[\s*(?:-?\d+|{_QUOTED})(?:\s*,\s*(?:-?\d+|{_QUOTED}))+\s*\]")),
    ("field", re.compile(r"\[\s*-?\d+\s*\]")),
    ("field", re.compile(rf"\[\s*{_QUOTED}\s*\]")),
)
_NEVER_ALLOWED = frozenset({"a function call"})


def path_problems(path: str, *, reference: bool = False, result_path: bool = False) -> list[str]:
    """Why `path` is not a JSONPath AWS documents ([] when it is).

    A Reference Path identifies a single node: only `.name`, `['name']` and `[index]` after the root; no `..`,
    `*`, `[?(...)]`/`@`, `:` slices, `,` unions or functions. A ResultPath is a Reference Path into the state
    input (root `$`). AWS lists functions such as `length()` as unsupported and documents no path that takes
    one, so they are refused in every path.
    """
    root = _ROOT.match(path)
    if root is None:
        return [f"{path!r} does not start with $"]
    problems = []
    if result_path and root.group() != "$":
        problems.append(f"{path!r}: a ResultPath starts with $ (not the context object $$ or a variable)")
    position = root.end()
    while position < len(path):
        kind, match = next(((k, m) for k, pattern in _SEGMENTS if (m := pattern.match(path, position))), ("", None))
        if match is None:
            return [*problems, f"{path!r}: not JSONPath syntax at offset {position} ({path[position:]!r})"]
        if kind in _NEVER_ALLOWED or (reference and kind != "field"):
            what = "a Reference Path" if reference else "a Step Functions path"
            problems.append(f"{path!r}: {what} cannot use {kind} ({match.group()!r})")
        position = match.end()
    return problems


def intrinsic_path_arguments(expression: str) -> list[str]:
    """The JSONPath arguments of an intrinsic function call, nested calls included (string literals skipped)."""
    paths, position, quoted = [], 0, False
    while position < len(expression):
        char = expression[position]
        if quoted:
            quoted = char != "'"
            position += 2 if char == "\\" else 1
            continue
        if char == "'":
            quoted = True
        elif char == "$" and expression[:position].rstrip()[-1:] in ("(", ","):
            end = _path_end(expression, position)
            paths.append(expression[position:end].strip())
            position = end
            continue
        position += 1
    return paths


def _path_end(expression: str, start: int) -> int:
    """Where a path argument ends: the `,` or `)` outside its brackets."""
    depth, quote = 0, ""
    for position in range(start, len(expression)):
        char = expression[position]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"" and depth:
            quote = char
        elif char in "[(":
            depth += 1
        elif char in "])" and depth:
            depth -= 1
        elif char in ",)":
            return position
    return len(expression)


# -- walking a definition ----------------------------------------------------------------------------------------
def _strings(value: Any, location: str = "", key: str = "") -> Iterator[tuple[str, str, str]]:
    """(location, key, string) of every string value in `value`."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{location}/{k}", k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{location}/{i}", key)
    elif isinstance(value, str):
        yield location, key, value


def _states(machine: dict[str, Any], location: str = "", language: str = "JSONPath") -> Iterator[tuple]:
    """(location, state, query language) of every state, Parallel branches and Map processors included."""
    language = machine.get("QueryLanguage", language)
    for name, state in (machine.get("States") or {}).items():
        state_location = f"{location}/States/{name}"
        state_language = state.get("QueryLanguage", language)
        yield state_location, state, state_language
        for index, branch in enumerate(state.get("Branches") or ()):
            yield from _states(branch, f"{state_location}/Branches/{index}", state_language)
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from _states(state[key], f"{state_location}/{key}", state_language)


def _choice_rule_paths(rule: dict[str, Any], location: str) -> Iterator[tuple[str, str]]:
    """(location, path) of a Choice rule's Variable and `...Path` comparisons, through And/Or/Not."""
    for key, value in rule.items():
        if key in ("And", "Or"):
            for index, sub in enumerate(value):
                yield from _choice_rule_paths(sub, f"{location}/{key}/{index}")
        elif key == "Not":
            yield from _choice_rule_paths(value, f"{location}/Not")
        elif (key == "Variable" or key.endswith("Path")) and isinstance(value, str):
            yield f"{location}/{key}", value


def _payload_paths(value: Any, location: str) -> Iterator[tuple[str, str]]:
    """(location, path) of every `.$` field of a state's payload templates, and of each intrinsic's arguments."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _payload_paths(item, f"{location}/{index}")
        return
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        if key in _NOT_PAYLOAD:
            continue
        if key.endswith(".$") and isinstance(item, str):
            paths = intrinsic_path_arguments(item) if item.lstrip().startswith("States.") else [item]
            yield from ((f"{location}/{key}", path) for path in paths)
        else:
            yield from _payload_paths(item, f"{location}/{key}")


def _state_paths(state: dict[str, Any], location: str) -> Iterator[tuple[str, str, str]]:
    """(location, path, kind) of every path of one state; kind is "path", "reference" or "result"."""
    for key in sorted(PATH_FIELDS | REFERENCE_PATH_FIELDS | {"ResultPath"}):
        if isinstance(state.get(key), str):
            kind = "result" if key == "ResultPath" else "path" if key in PATH_FIELDS else "reference"
            yield f"{location}/{key}", state[key], kind
    for key, (container, fields) in NESTED_REFERENCE_PATH_FIELDS.items():
        section = (state.get(key) or {}).get(container, {}) if container else state.get(key) or {}
        for field in fields:
            if isinstance(section.get(field), str):
                yield f"{location}/{key}/{field}", section[field], "reference"
    for key in sorted(PATH_OR_INTRINSIC_FIELDS):
        value = state.get(key)
        if isinstance(value, str) and value.lstrip().startswith("States."):
            yield from ((f"{location}/{key}", path, "path") for path in intrinsic_path_arguments(value))
        elif isinstance(value, str):
            yield f"{location}/{key}", value, "reference"
    for index, rule in enumerate(state.get("Choices") or ()):
        for rule_location, path in _choice_rule_paths(rule, f"{location}/Choices/{index}"):
            yield rule_location, path, "reference"
    for field_location, path in _payload_paths(state, location):
        yield field_location, path, "path"


def jsonpath_problems(definition: dict[str, Any]) -> list[str]:
    """Every JSONPath of a definition's JSONPath states that AWS does not document, with its location.

    https://docs.aws.amazon.com/step-functions/latest/dg/amazon-states-language-paths.html : ResultPath (and the
    other single-node fields: ItemsPath, a Choice's Variable and `...Path` comparisons, Wait's SecondsPath/
    TimestampPath, ...) must be a Reference Path: no `..`, `[?(...)]`, `*`, `@`, `:` or `,`. The page lists
    `@ , : ?` today and listed `..` and `*` too; both select more than the single node a Reference Path names.
    InputPath, OutputPath and `.$` payload fields take any documented JsonPath. JSONata states have no JSONPath.
    """
    problems = []
    for location, state, language in _states(definition):
        if language != "JSONPath":
            continue
        for path_location, path, kind in _state_paths(state, location):
            found = path_problems(path, reference=kind != "path", result_path=kind == "result")
            problems.extend(f"{path_location}: {problem}" for problem in found)
    return problems


def intrinsic_problems(definition: dict[str, Any]) -> list[str]:
    """Every intrinsic function call in any string of the definition that AWS does not document.

    Documented: https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html . Also flagged:
    an intrinsic call in a field whose name does not end in `.$` (Step Functions passes it on as literal text).
    """
    problems = []
    for location, key, text in _strings(definition):
        for name in _INTRINSIC_CALL.findall(text):
            if name not in DOCUMENTED_INTRINSICS:
                problems.append(f"{location}: {name} is not a documented intrinsic function ({text!r})")
        literal = not key.endswith(".$") and key not in PATH_OR_INTRINSIC_FIELDS
        if literal and _INTRINSIC_CALL.match(text.lstrip()):
            problems.append(f"{location}: {text!r} is passed as literal text (the field name must end in .$)")
    return problems


def asl_validator(definition: dict[str, Any]) -> dict[str, Any]:
    """asl-validator's verdict on one definition: {"version", "valid", "errors": [{"code", "message"}]}."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found: Node.js >= 20.16 runs asl-validator (`make test` checks for it)")
    if not VALIDATOR_PACKAGE.is_file():
        pytest.fail("asl-validator is not installed: run `npm ci` at the repository root (`make test` does)")
    run = subprocess.run(
        [node, str(VALIDATOR_SCRIPT)],
        input=json.dumps(definition),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO_ROOT,
    )
    if run.returncode not in (0, 1):
        pytest.fail(f"{VALIDATOR_SCRIPT.name} failed (exit {run.returncode}): {run.stderr.strip()}")
    return json.loads(run.stdout)


def _report(problems: list[str]) -> str:
    return "\n".join(problems)


# -- fixtures ----------------------------------------------------------------------------------------------------
def state_machine_definitions(template_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Logical ID -> concrete definition of every AWS::StepFunctions::StateMachine in a synthesized template."""
    resolver = Resolver(template_json)
    definitions = {}
    for logical_id, resource in template_json["Resources"].items():
        if resource["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        props = resource["Properties"]
        path = f"Resources.{logical_id}.Properties"
        if "DefinitionString" in props:
            definitions[logical_id] = json.loads(
                resolver.resolve(props["DefinitionString"], f"{path}.DefinitionString")
            )
        else:
            definitions[logical_id] = resolver.resolve(props["Definition"], f"{path}.Definition")
    return definitions


@pytest.fixture(scope="module", params=STAGES)
def definitions(request) -> dict[str, dict[str, Any]]:
    """Each stage's state machine definitions, from the session's synthesized templates (tests/infra/conftest.py)."""
    template_json = request.getfixturevalue(STAGE_TEMPLATES[request.param])
    found = state_machine_definitions(template_json)
    assert found, f"stage {request.param}: no AWS::StepFunctions::StateMachine in the template"
    return found


def _machine(**fields: Any) -> dict[str, Any]:
    """A one-state machine: a Pass state with `fields`."""
    return {"StartAt": "Only", "States": {"Only": {"Type": "Pass", "End": True, **fields}}}


# A definition that exercises the documented syntax the checks must accept: filters and wildcards where any JsonPath
# is allowed, the context object, bracket notation, nested intrinsics with commas and parentheses in literals.
GOOD = {
    "StartAt": "Shape",
    "States": {
        "Shape": {
            "Type": "Pass",
            "InputPath": "$.jar[?(@.a >= 5)]",
            "Parameters": {
                "name.$": "States.Format('run {} (of {}), ok', $$.Execution.Name, $['odd key'][0])",
                "part.$": "States.ArrayGetItem(States.StringSplit($.key, '/'), 1)",
                "all.$": "$.items[*].id",
                "literal": "States.Format is only evaluated in .$ fields",
            },
            "ResultPath": "$.shaped['result'][0]",
            "Next": "Route",
        },
        "Route": {
            "Type": "Choice",
            "Choices": [{"Not": {"Variable": "$$.Execution.Input.skip", "IsPresent": True}, "Next": "Done"}],
            "Default": "Stop",
        },
        "Stop": {"Type": "Fail", "ErrorPath": "$.error", "CausePath": "States.Format('{}', $.cause)"},
        "Done": {"Type": "Succeed"},
    },
}


# -- the real definitions ----------------------------------------------------------------------------------------
def test_asl_validator__installed_version_is_the_pinned_one():
    pinned = json.loads((REPO_ROOT / "package.json").read_text())["devDependencies"]["asl-validator"]
    assert asl_validator(_machine())["version"] == pinned, "node_modules is stale: run `npm ci`"


def test_definition__passes_asl_validator(definitions):
    for logical_id, definition in definitions.items():
        verdict = asl_validator(definition)
        errors = [f"{e['code']}: {e['message']}" for e in verdict["errors"]]
        assert verdict["valid"], f"{logical_id} (asl-validator {verdict['version']}):\n{_report(errors)}"


def test_definition__uses_only_documented_intrinsic_functions(definitions):
    for logical_id, definition in definitions.items():
        problems = intrinsic_problems(definition)
        assert not problems, f"{logical_id}:\n{_report(problems)}"


def test_definition__uses_only_documented_jsonpath(definitions):
    for logical_id, definition in definitions.items():
        problems = jsonpath_problems(definition)
        assert not problems, f"{logical_id}:\n{_report(problems)}"


# -- the checks accept documented syntax and reject the rest -----------------------------------------------------
def test_checks__accept_documented_syntax():
    assert asl_validator(GOOD)["errors"] == []
    assert intrinsic_problems(GOOD) == []
    assert jsonpath_problems(GOOD) == []


def test_asl_validator__rejects_unknown_state_type():
    verdict = asl_validator({"StartAt": "Only", "States": {"Only": {"Type": "Sleep", "End": True}}})
    assert not verdict["valid"]
    assert any(e["message"].startswith("/States/Only/Type is invalid") for e in verdict["errors"]), verdict


def test_asl_validator__rejects_next_to_missing_state():
    verdict = asl_validator({"StartAt": "Only", "States": {"Only": {"Type": "Pass", "Next": "Gone"}}})
    assert not verdict["valid"]
    assert {"code": "MISSING_TRANSITION_TARGET", "message": "Missing 'StartAt'|'Next'|'Default' target: Gone"} in (
        verdict["errors"]
    )


def test_intrinsic_check__rejects_undocumented_function():
    definition = _machine(Parameters={"name.$": "States.Format('{}', States.Fromat('{}', $.a))"})
    assert intrinsic_problems(definition) == [
        "/States/Only/Parameters/name.$: States.Fromat is not a documented intrinsic function "
        "(\"States.Format('{}', States.Fromat('{}', $.a))\")"
    ]


def test_intrinsic_check__rejects_intrinsic_in_a_literal_field():
    definition = _machine(Parameters={"name": "States.Format('{}', $.a)"})
    assert intrinsic_problems(definition) == [
        "/States/Only/Parameters/name: \"States.Format('{}', $.a)\" is passed as literal text "
        "(the field name must end in .$)"
    ]


def test_jsonpath_check__rejects_wildcard_result_path():
    assert jsonpath_problems(_machine(ResultPath="$.results[*]")) == [
        "/States/Only/ResultPath: '$.results[*]': a Reference Path cannot use a wildcard `*` ('[*]')"
    ]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"ResultPath": "$..id"}, "/States/Only/ResultPath: '$..id': a Reference Path cannot use deep scan `..`"),
        ({"ResultPath": "$.a[?(@.b)]"}, "/States/Only/ResultPath: '$.a[?(@.b)]': a Reference Path cannot use a filter"),
        ({"ResultPath": "$.a[0:2]"}, "/States/Only/ResultPath: '$.a[0:2]': a Reference Path cannot use a slice"),
        ({"ResultPath": "$.a[0,1]"}, "/States/Only/ResultPath: '$.a[0,1]': a Reference Path cannot use a union"),
        ({"ResultPath": "$$.Execution.Id"}, "/States/Only/ResultPath: '$$.Execution.Id': a ResultPath starts with $"),
        ({"InputPath": "$.items.length()"}, "/States/Only/InputPath: '$.items.length()': a Step Functions path cannot"),
        ({"OutputPath": "$.a-b"}, "/States/Only/OutputPath: '$.a-b': not JSONPath syntax at offset 3"),
        ({"Parameters": {"x.$": "foo"}}, "/States/Only/Parameters/x.$: 'foo' does not start with $"),
        (
            {"Parameters": {"x.$": "States.JsonToString($.a.size())"}},
            "/States/Only/Parameters/x.$: '$.a.size()': a Step Functions path cannot use a function call",
        ),
    ],
)
def test_jsonpath_check__rejects_undocumented_syntax(fields, expected):
    problems = jsonpath_problems(_machine(**fields))
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_jsonpath_check__rejects_filter_in_choice_variable_inside_a_map():
    rule = {"And": [{"Variable": "$.items[?(@.ok)]", "IsPresent": True}], "Next": "Done"}
    inner = {
        "StartAt": "Route",
        "States": {"Route": {"Type": "Choice", "Choices": [rule]}, "Done": {"Type": "Succeed"}},
    }
    definition = {"StartAt": "Each", "States": {"Each": {"Type": "Map", "ItemProcessor": inner, "End": True}}}
    (problem,) = jsonpath_problems(definition)
    assert problem.startswith("/States/Each/ItemProcessor/States/Route/Choices/0/And/0/Variable: '$.items[?(@.ok)]'")
