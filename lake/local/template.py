"""Resolve a synthesized CloudFormation template against physical names the local cloud decides.

`physical_resources(template)` gives every resource a deterministic local identity (account
123456789012, us-east-1); `Resolver(template, physical).resolve(value)` evaluates Ref, Fn::GetAtt,
Fn::Join, Fn::Sub, Fn::Select, Fn::Split, Fn::If/Equals/Not/And/Or, Fn::FindInMap, Fn::Base64 and the
pseudo parameters. Unsupported functions raise TemplateError naming the function and the path.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"
_NO_VALUE = object()
_SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")


class TemplateError(ValueError):
    """A template construct the local cloud cannot resolve. The message names the JSON path."""


@dataclass(frozen=True)
class Physical:
    """What `Ref` returns and the attributes `Fn::GetAtt` may read."""

    ref: str
    attributes: dict[str, str] = field(default_factory=dict)


def load_template(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _local_name(logical_id: str, props: dict[str, Any], key: str) -> str:
    value = props.get(key)
    return value if isinstance(value, str) else logical_id


def _arn(service: str, resource: str, region: str = REGION, account: str = ACCOUNT_ID) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


def physical_for(logical_id: str, resource: dict[str, Any]) -> Physical:  # noqa: C901 - one branch per type
    """Deterministic local identity of one resource (literal name properties win over generated ones)."""
    kind = resource.get("Type", "")
    props = resource.get("Properties") or {}
    if kind == "AWS::S3::Bucket":
        name = _local_name(logical_id, props, "BucketName").lower()
        return Physical(
            name,
            {
                "Arn": f"arn:{PARTITION}:s3:::{name}",
                "DomainName": f"{name}.s3.{URL_SUFFIX}",
                "RegionalDomainName": f"{name}.s3.{REGION}.{URL_SUFFIX}",
            },
        )
    if kind in ("AWS::Glue::Job", "AWS::Glue::Crawler", "AWS::Glue::SecurityConfiguration"):
        return Physical(_local_name(logical_id, props, "Name"))
    if kind == "AWS::Glue::Database":
        name = (props.get("DatabaseInput") or {}).get("Name")
        return Physical(name if isinstance(name, str) else logical_id.lower())
    if kind == "AWS::Glue::Table":
        name = (props.get("TableInput") or {}).get("Name")
        return Physical(name if isinstance(name, str) else logical_id.lower())
    if kind == "AWS::SNS::Topic":
        name = _local_name(logical_id, props, "TopicName")
        arn = _arn("sns", name)
        return Physical(arn, {"TopicArn": arn, "TopicName": name})
    if kind == "AWS::SQS::Queue":
        name = _local_name(logical_id, props, "QueueName")
        url = f"https://sqs.{REGION}.{URL_SUFFIX}/{ACCOUNT_ID}/{name}"
        return Physical(url, {"Arn": _arn("sqs", name), "QueueName": name, "QueueUrl": url})
    if kind == "AWS::StepFunctions::StateMachine":
        name = _local_name(logical_id, props, "StateMachineName")
        arn = _arn("states", f"stateMachine:{name}")
        return Physical(arn, {"Arn": arn, "Name": name})
    if kind == "AWS::IAM::Role":
        name = _local_name(logical_id, props, "RoleName")
        return Physical(
            name, {"Arn": f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/{name}", "RoleId": f"AROA{name.upper()}"}
        )
    if kind == "AWS::KMS::Key":
        key_id = f"local-{logical_id.lower()}"
        return Physical(key_id, {"Arn": _arn("kms", f"key/{key_id}"), "KeyId": key_id})
    if kind == "AWS::Lambda::Function":
        name = _local_name(logical_id, props, "FunctionName")
        return Physical(name, {"Arn": _arn("lambda", f"function:{name}")})
    if kind == "AWS::Logs::LogGroup":
        name = _local_name(logical_id, props, "LogGroupName")
        return Physical(name, {"Arn": _arn("logs", f"log-group:{name}:*")})
    if kind == "AWS::Events::Rule":
        name = _local_name(logical_id, props, "Name")
        return Physical(name, {"Arn": _arn("events", f"rule/{name}")})
    if kind == "AWS::Athena::WorkGroup":
        return Physical(_local_name(logical_id, props, "Name"))
    service = kind.split("::")[1].lower() if kind.count("::") >= 2 else "local"
    return Physical(logical_id, {"Arn": _arn(service, logical_id)})


def physical_resources(template: dict[str, Any]) -> dict[str, Physical]:
    """Local identities of every resource. Name properties that are not literals are ignored."""
    return {lid: physical_for(lid, res) for lid, res in (template.get("Resources") or {}).items()}


class Resolver:
    def __init__(
        self,
        template: dict[str, Any],
        physical: dict[str, Physical] | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        self.template = template
        self.physical = physical if physical is not None else physical_resources(template)
        self.parameters = {
            name: (parameters or {}).get(name, spec.get("Default"))
            for name, spec in (template.get("Parameters") or {}).items()
        }
        self.pseudo = {
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Region": REGION,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackName": "local",
            "AWS::StackId": _arn("cloudformation", "stack/local/local"),
            "AWS::NotificationARNs": [],
        }
        self._conditions: dict[str, bool] = {}

    # -- public -------------------------------------------------------------------------------------
    def resolve(self, value: Any, path: str = "$") -> Any:
        result = self._resolve(value, path)
        return None if result is _NO_VALUE else result

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions") or {}
            if name not in conditions:
                raise TemplateError(f"Conditions.{name}: unknown condition")
            self._conditions[name] = bool(self.resolve(conditions[name], f"Conditions.{name}"))
        return self._conditions[name]

    def resource_enabled(self, logical_id: str) -> bool:
        cond = (self.template["Resources"][logical_id]).get("Condition")
        return cond is None or self.condition(cond)

    def ref(self, name: str, path: str = "$") -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name].ref
        raise TemplateError(f"{path}: Ref to unknown {name!r}")

    def get_att(self, logical_id: str, attribute: str, path: str = "$") -> str:
        phys = self.physical.get(logical_id)
        if phys is None:
            raise TemplateError(f"{path}: Fn::GetAtt of unknown resource {logical_id!r}")
        if attribute not in phys.attributes:
            raise TemplateError(f"{path}: Fn::GetAtt {logical_id}.{attribute} has no local value")
        return phys.attributes[attribute]

    # -- evaluation ---------------------------------------------------------------------------------
    def _resolve(self, value: Any, path: str) -> Any:
        if isinstance(value, list):
            items = [self._resolve(v, f"{path}[{i}]") for i, v in enumerate(value)]
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg, path)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key.startswith("Fn::"):
                handler = getattr(self, "_fn_" + key[4:].lower(), None)
                if handler is None:
                    raise TemplateError(f"{path}: {key} is not supported locally")
                return handler(arg, f"{path}.{key}")
        out = {}
        for k, v in value.items():
            resolved = self._resolve(v, f"{path}.{k}")
            if resolved is not _NO_VALUE:
                out[k] = resolved
        return out

    def _fn_getatt(self, arg: Any, path: str) -> str:
        if isinstance(arg, str):
            logical_id, _, attribute = arg.partition(".")
        else:
            logical_id, attribute = arg[0], self._resolve(arg[1], path)
        return self.get_att(logical_id, attribute, path)

    def _fn_join(self, arg: Any, path: str) -> str:
        delimiter, items = arg
        values = self._resolve(items, path)
        return delimiter.join(str(v) for v in values)

    def _fn_sub(self, arg: Any, path: str) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self._resolve(arg[1], path))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute, path)
            return str(self.ref(name, path))

        return _SUB_VAR.sub(replace, text).replace("${!", "${")

    def _fn_select(self, arg: Any, path: str) -> Any:
        index, items = self._resolve(arg[0], path), self._resolve(arg[1], path)
        return items[int(index)]

    def _fn_split(self, arg: Any, path: str) -> list[str]:
        delimiter, source = arg[0], self._resolve(arg[1], path)
        return str(source).split(delimiter)

    def _fn_if(self, arg: Any, path: str) -> Any:
        name, when_true, when_false = arg
        return self._resolve(when_true if self.condition(name) else when_false, path)

    def _fn_equals(self, arg: Any, path: str) -> bool:
        left, right = (self._resolve(a, path) for a in arg)
        return left == right

    def _fn_not(self, arg: Any, path: str) -> bool:
        return not self._resolve(arg[0], path)

    def _fn_and(self, arg: Any, path: str) -> bool:
        return all(self._resolve(a, path) for a in arg)

    def _fn_or(self, arg: Any, path: str) -> bool:
        return any(self._resolve(a, path) for a in arg)

    def _fn_findinmap(self, arg: Any, path: str) -> Any:
        name, top, second = (self._resolve(a, path) for a in arg[:3])
        try:
            return self.template["Mappings"][name][top][second]
        except KeyError as exc:
            raise TemplateError(f"{path}: no mapping {name}.{top}.{second}") from exc

    def _fn_base64(self, arg: Any, path: str) -> str:
        return base64.b64encode(str(self._resolve(arg, path)).encode()).decode()

    def _fn_getazs(self, arg: Any, path: str) -> list[str]:
        return [f"{REGION}a", f"{REGION}b", f"{REGION}c"]


def resolved_properties(resolver: Resolver, logical_id: str) -> dict[str, Any]:
    resource = resolver.template["Resources"][logical_id]
    return resolver.resolve(resource.get("Properties") or {}, f"Resources.{logical_id}.Properties") or {}


def resources_of_type(template: dict[str, Any], kind: str) -> list[str]:
    return [lid for lid, res in (template.get("Resources") or {}).items() if res.get("Type") == kind]
