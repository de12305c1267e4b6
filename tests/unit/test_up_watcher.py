"""`lake up` turns files that appear in the raw folder into Object Created events, once per change."""

from pathlib import Path

from lake.up import RawFolderWatcher


class FakePipeline:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.events: list[dict] = []

    def bucket(self, logical_prefix: str) -> str:
        assert logical_prefix == "StorageRaw"
        return "raw-bucket"

    def publish(self, event: dict) -> bool:
        self.events.append(event)
        return True


def test_poll__new_and_changed_files_become_events(tmp_path):
    (tmp_path / "raw-bucket" / "orders").mkdir(parents=True)
    (tmp_path / "raw-bucket" / "orders" / "old.csv").write_text("present before start")
    pipeline = FakePipeline(tmp_path)
    watcher = RawFolderWatcher(pipeline)
    assert watcher.poll() == []

    new = tmp_path / "raw-bucket" / "orders" / "ingest_date=2026-11-24" / "a.csv"
    new.parent.mkdir()
    new.write_text("a,b\n1,2\n")
    assert watcher.poll() == ["orders/ingest_date=2026-11-24/a.csv"]
    assert watcher.poll() == []
    new.write_text("a,b\n1,2\n3,4\n")
    assert watcher.poll() == ["orders/ingest_date=2026-11-24/a.csv"]
    first, second = pipeline.events
    assert first["detail"]["bucket"]["name"] == "raw-bucket"
    assert (first["detail"]["object"]["size"], second["detail"]["object"]["size"]) == (8, 12)
