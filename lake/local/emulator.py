"""One in-process moto server shared by the test process, boto3 clients and job subprocesses."""

from __future__ import annotations

import logging
import os
from typing import Any

from lake.local import moto_compat

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class Emulator:
    """A `ThreadedMotoServer` on a free localhost port, executing state machines, moto_compat applied.

    moto's backends are process-global: `start()` resets them, so one emulator runs at a time. The
    Step Functions interpreter calls services through `http://localhost:$MOTO_PORT`, hence the env var.
    """

    def __init__(self) -> None:
        self._server: Any = None
        self.port: int | None = None
        self._saved_env: dict[str, str | None] = {}

    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise RuntimeError("emulator not started")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Emulator:
        from moto.moto_api import _internal
        from moto.server import ThreadedMotoServer

        moto_compat.apply()
        moto_compat.enable_execution()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        _internal.moto_api_backend.reset()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        self._set_env("MOTO_PORT", str(self.port))
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _set_env(self, key: str, value: str) -> None:
        self._saved_env.setdefault(key, os.environ.get(key))
        os.environ[key] = value

    def client(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            config=Config(retries={"max_attempts": 1}),
            **DUMMY_CREDENTIALS,
        )

    def subprocess_env(self) -> dict[str, str]:
        """Environment for job subprocesses so their boto3 clients hit this emulator."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIALS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }
