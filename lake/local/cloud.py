"""LocalCloud: a synthesized CloudFormation template deployed into one in-process moto server.

    with LocalCloud(root, template) as cloud:
        arn = cloud.start_execution({"bucket": "...", "key": "..."})
        result = cloud.wait(arn, timeout=300)      # ExecutionResult: status, visited states, errors
        cloud.outbox()                             # SNS messages

Creates S3 buckets (+ lake folders), Glue databases/tables/crawlers/jobs, SNS topics and state
machines from their resolved properties; other resource types are skipped (listed in `.skipped`).
Glue scripts: `asset_files` ({s3 uri: local file}) and/or the `Custom::CDKBucketDeployment` sources
found through `<template dir>/*.assets.json`, copied into the lake folders and into moto's S3.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

from etl.storage import LocalStorage, split_s3_uri
from lake.executions import ExecutionResult, wait_for_execution
from lake.local import sns_outbox
from lake.local.crawler import CrawlerRuntime
from lake.local.emulator import Emulator
from lake.local.glue_runtime import GlueRuntime, SimulatedJob
from lake.local.template import Resolver, load_template, physical_resources, resolved_properties


class LocalCloud:
    def __init__(
        self,
        root: Path,
        template: dict[str, Any] | str | Path,
        *,
        asset_files: dict[str, Path] | None = None,
        assets_manifest: Path | None = None,
        simulated_jobs: dict[str, SimulatedJob] | None = None,
        crawl_min_duration_s: float = 0.0,
        timeout_minute_s: float = 60.0,
    ) -> None:
        self.root = Path(root)
        self.template_path = None if isinstance(template, dict) else Path(template)
        self.template = template if isinstance(template, dict) else load_template(template)
        self.asset_files = dict(asset_files or {})
        self.assets_manifest = assets_manifest
        self.simulated_jobs = simulated_jobs
        self.crawl_min_duration_s = crawl_min_duration_s
        self.timeout_minute_s = timeout_minute_s
        self.physical = physical_resources(self.template)
        self.resolver = Resolver(self.template, self.physical)
        self.emulator = Emulator()
        self.glue_runtime: GlueRuntime | None = None
        self.crawler_runtime: CrawlerRuntime | None = None
        self.skipped: list[str] = []
        self.warnings: list[str] = []

    # -- lifecycle ----------------------------------------------------------------------------------
    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalCloud:
        self.root.mkdir(parents=True, exist_ok=True)
        self.emulator.start()
        try:
            url = self.emulator.endpoint_url
            self.glue_runtime = GlueRuntime(
                self.root, url, simulated=self.simulated_jobs, minute_s=self.timeout_minute_s
            ).install()
            self.crawler_runtime = CrawlerRuntime(self.root, url, self.crawl_min_duration_s).install()
            sns_outbox.install(self.root)
            self._deploy()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for runtime in (self.glue_runtime, self.crawler_runtime):
            if runtime is not None:
                runtime.join(timeout=5)
                runtime.uninstall()
        sns_outbox.uninstall(self.root)
        self.emulator.stop()

    # -- clients and lookups ------------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        return self.emulator.endpoint_url

    def client(self, service: str) -> Any:
        return self.emulator.client(service)

    def physical_name(self, logical_id_prefix: str, kind: str | None = None) -> str:
        """`Ref` value of the one resource (of `kind`, if given) whose logical id starts with the prefix."""
        return self.physical[self._logical_id(logical_id_prefix, kind)].ref

    def state_machine_arn(self, logical_id_prefix: str = "") -> str:
        return self.physical[self._logical_id(logical_id_prefix, "AWS::StepFunctions::StateMachine")].ref

    def _logical_id(self, prefix: str, kind: str | None = None) -> str:
        matches = [
            lid
            for lid, res in self.template["Resources"].items()
            if lid.startswith(prefix) and (kind is None or res["Type"] == kind)
        ]
        if len(matches) != 1:
            raise KeyError(
                f"{len(matches)} resources {kind or ''} match logical id prefix {prefix!r}: {matches}"
            )
        return matches[0]

    # -- executions ---------------------------------------------------------------------------------
    def start_execution(
        self, execution_input: Any = None, state_machine: str = "", name: str | None = None
    ) -> str:
        kwargs = {
            "stateMachineArn": self.state_machine_arn(state_machine),
            "input": json.dumps(execution_input or {}),
        }
        if name:
            kwargs["name"] = name
        return self.client("stepfunctions").start_execution(**kwargs)["executionArn"]

    def wait(self, execution_arn: str, timeout: float = 300.0) -> ExecutionResult:
        return wait_for_execution(self.client("stepfunctions"), execution_arn, timeout=timeout)

    def outbox(self) -> list[dict[str, Any]]:
        return sns_outbox.read_outbox(self.root)

    def put_object(self, uri: str, data: bytes) -> None:
        """Write an object to the lake folder and to moto's S3."""
        path = LocalStorage(self.root).local_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        bucket, key = split_s3_uri(uri)
        self.client("s3").put_object(Bucket=bucket, Key=key, Body=data)

    # -- deployment ---------------------------------------------------------------------------------
    def _deploy(self) -> None:
        order = [
            ("AWS::S3::Bucket", self._create_bucket),
            ("AWS::SNS::Topic", self._create_topic),
            ("AWS::Glue::Database", self._create_database),
            ("AWS::Glue::Table", self._create_table),
            ("AWS::Glue::Crawler", self._create_crawler),
            ("AWS::Glue::Job", self._create_job),
            ("AWS::StepFunctions::StateMachine", self._create_state_machine),
        ]
        handled = {kind for kind, _ in order}
        for kind, create in order:
            for lid, res in self.template["Resources"].items():
                if res["Type"] == kind and self.resolver.resource_enabled(lid):
                    create(lid, resolved_properties(self.resolver, lid))
        self.skipped = sorted(
            f"{lid} ({res['Type']})"
            for lid, res in self.template["Resources"].items()
            if res["Type"] not in handled
        )
        self._deploy_assets()

    def _create_bucket(self, lid: str, props: dict[str, Any]) -> None:
        name = self.physical[lid].ref
        self.client("s3").create_bucket(Bucket=name)
        (self.root / name).mkdir(parents=True, exist_ok=True)

    def _create_topic(self, lid: str, props: dict[str, Any]) -> None:
        self.client("sns").create_topic(Name=self.physical[lid].attributes["TopicName"])

    def _create_database(self, lid: str, props: dict[str, Any]) -> None:
        db = dict(props.get("DatabaseInput") or {})
        db["Name"] = self.physical[lid].ref
        self.client("glue").create_database(DatabaseInput=db)

    def _create_table(self, lid: str, props: dict[str, Any]) -> None:
        table = dict(props["TableInput"])
        table["Name"] = self.physical[lid].ref
        self.client("glue").create_table(DatabaseName=props["DatabaseName"], TableInput=table)

    def _create_crawler(self, lid: str, props: dict[str, Any]) -> None:
        keys = (
            "Role",
            "DatabaseName",
            "Targets",
            "TablePrefix",
            "SchemaChangePolicy",
            "RecrawlPolicy",
            "Configuration",
            "Description",
        )
        kwargs = {k: props[k] for k in keys if k in props}
        self.client("glue").create_crawler(Name=self.physical[lid].ref, **kwargs)

    def _create_job(self, lid: str, props: dict[str, Any]) -> None:
        keys = (
            "Role",
            "Command",
            "DefaultArguments",
            "NonOverridableArguments",
            "ExecutionProperty",
            "MaxRetries",
            "Timeout",
            "GlueVersion",
            "WorkerType",
            "NumberOfWorkers",
            "Description",
        )
        kwargs = {k: props[k] for k in keys if k in props}
        if "MaxCapacity" in props and "WorkerType" not in props:
            kwargs["MaxCapacity"] = props["MaxCapacity"]
        self.client("glue").create_job(Name=self.physical[lid].ref, **kwargs)

    def _create_state_machine(self, lid: str, props: dict[str, Any]) -> None:
        definition = props.get("DefinitionString")
        if definition is None and "Definition" in props:
            definition = json.dumps(props["Definition"])
        subs = props.get("DefinitionSubstitutions") or {}
        for key, value in subs.items():
            definition = definition.replace("${" + key + "}", str(value))
        kwargs: dict[str, Any] = {
            "name": self.physical[lid].attributes["Name"],
            "definition": definition,
            "roleArn": props.get("RoleArn") or "arn:aws:iam::123456789012:role/local",
        }
        if props.get("StateMachineType"):
            kwargs["type"] = props["StateMachineType"]
        self.client("stepfunctions").create_state_machine(**kwargs)

    # -- assets -------------------------------------------------------------------------------------
    def _deploy_assets(self) -> None:
        for uri, path in self.asset_files.items():
            self._upload_file(uri, Path(path))
        for lid, res in self.template["Resources"].items():
            if res["Type"] == "Custom::CDKBucketDeployment":
                self._bucket_deployment(lid, resolved_properties(self.resolver, lid))

    def _asset_sources(self) -> dict[str, Path]:
        """Asset object key -> local file or folder, from `*.assets.json` next to the template."""
        manifests = [self.assets_manifest] if self.assets_manifest else []
        if not manifests and self.template_path is not None:
            manifests = sorted(self.template_path.parent.glob("*.assets.json"))
        sources: dict[str, Path] = {}
        for manifest in manifests:
            data = json.loads(Path(manifest).read_text(encoding="utf-8"))
            for asset in (data.get("files") or {}).values():
                for dest in asset.get("destinations", {}).values():
                    sources[dest["objectKey"]] = Path(manifest).parent / asset["source"]["path"]
        return sources

    def _bucket_deployment(self, lid: str, props: dict[str, Any]) -> None:
        sources = self._asset_sources()
        bucket = props["DestinationBucketName"]
        prefix = (props.get("DestinationBucketKeyPrefix") or "").strip("/")
        for key in props.get("SourceObjectKeys", []):
            source = sources.get(key)
            if source is None or not source.exists():
                self.warnings.append(f"{lid}: asset {key} not found in the assets manifest / cdk.out")
                continue
            for rel, data in _asset_members(source):
                uri = f"s3://{bucket}/{prefix + '/' if prefix else ''}{rel}"
                self.put_object(uri, data)

    def _upload_file(self, uri: str, path: Path) -> None:
        self.put_object(uri, path.read_bytes())


def _asset_members(source: Path) -> list[tuple[str, bytes]]:
    """(relative key, bytes) of a CDK asset: a folder, a .zip archive, or one file."""
    if source.is_dir():
        return [
            (p.relative_to(source).as_posix(), p.read_bytes())
            for p in sorted(source.rglob("*"))
            if p.is_file()
        ]
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            return [(n, archive.read(n)) for n in archive.namelist() if not n.endswith("/")]
    return [(source.name, source.read_bytes())]


def copy_tree_into_lake(root: Path, source: Path, uri: str) -> None:
    """Copy a local folder into the lake (folder side only), e.g. sample datasets."""
    shutil.copytree(source, LocalStorage(Path(root)).local_path(uri), dirs_exist_ok=True)
