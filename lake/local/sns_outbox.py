"""SNS `Publish` (API or `arn:aws:states:::sns:publish`) also lands in `<root>/_outbox/sns.jsonl`.

One JSON line per successful publish to a topic: `{"topic_arn", "subject", "message", "timestamp"}`.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

OUTBOX = Path("_outbox") / "sns.jsonl"

_lock = threading.Lock()
_active_root: Path | None = None
_original_publish: Any = None


def outbox_path(root: Path) -> Path:
    return Path(root) / OUTBOX


def install(root: Path) -> None:
    """Hook moto's SNSBackend.publish to append to `root`'s outbox (idempotent; the last root wins)."""
    global _active_root, _original_publish
    from moto.sns.models import SNSBackend

    with _lock:
        if _original_publish is None:
            _original_publish = SNSBackend.publish
            SNSBackend.publish = _hooked_publish
        _active_root = Path(root)


def uninstall(root: Path | None = None) -> None:
    global _active_root
    with _lock:
        if root is None or _active_root == Path(root):
            _active_root = None


def read_outbox(root: Path) -> list[dict[str, Any]]:
    """Messages published so far, oldest first ([] when none)."""
    path = outbox_path(root)
    if not path.exists():
        return []
    with _lock:
        lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _append(root: Path, record: dict[str, Any]) -> None:
    path = outbox_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock, path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")


# Patched onto moto.sns.models.SNSBackend (same signature as moto 5.2.5's method).
def _hooked_publish(
    self: Any,
    message: str,
    arn: str | None,
    phone_number: str | None = None,
    subject: str | None = None,
    message_attributes: dict[str, Any] | None = None,
    group_id: str | None = None,
    deduplication_id: str | None = None,
    message_structure: str | None = None,
) -> str:
    message_id = _original_publish(
        self,
        message,
        arn,
        phone_number=phone_number,
        subject=subject,
        message_attributes=message_attributes,
        group_id=group_id,
        deduplication_id=deduplication_id,
        message_structure=message_structure,
    )
    root = _active_root
    if root is not None and arn and not phone_number:
        record = {
            "topic_arn": arn,
            "subject": subject,
            "message": message,
            "timestamp": datetime.now(UTC).isoformat(),
            "message_id": message_id,
        }
        _append(root, record)
    return message_id
