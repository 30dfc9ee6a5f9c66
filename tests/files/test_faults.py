"""Storage down answers 503; a process dying between the object and its metadata leaves nothing after the sweep."""
import os
import signal
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from baas.storage.embedded import free_port
from baas.testing import ApiClient, ADMIN_TOKEN, create_project, wait_until
from files_helpers import stored_keys, upload

LATER = timedelta(minutes=361)


def test_storage_down_is_503_and_leaves_no_metadata(make_app, tmp_path, backend):
    if backend == "s3":
        broken = make_app({"storage.s3.endpoint": f"127.0.0.1:{free_port()}", "storage.s3.timeout_seconds": 1})
    else:
        files_dir = tmp_path / "broken-data" / "files"
        files_dir.parent.mkdir(parents=True)
        files_dir.write_text("not a folder")  # every write under it fails like a dead disk
        broken = make_app({"storage.s3.endpoint": None, "data_dir": str(files_dir.parent)})
    client = broken.test_client()
    project = create_project(ApiClient(client, {"Authorization": f"Bearer {ADMIN_TOKEN}"}), client)
    response = upload(project.server, b"hello")
    assert response.status_code == 503
    body = response.get_json()
    assert body["code"] == 503 and "storage is unavailable" in body["message"]
    assert "127.0.0.1" not in body["message"] and "Errno" not in body["message"]
    assert project.server.get("/v1/files").get_json()["items"] == []


def _killed_between_steps(monkeypatch, files):
    """The process dies after the object is written: no metadata, no clean-up."""
    def die(*args, **kwargs):
        raise KeyboardInterrupt("killed")  # BaseException, like the interpreter going away

    monkeypatch.setattr(files, "_record", die)
    monkeypatch.setattr(files, "_discard", lambda *args: None)


def test_sweep_removes_the_object_of_an_upload_killed_before_its_metadata(project, files, blobs, monkeypatch):
    _killed_between_steps(monkeypatch, files)
    with pytest.raises(KeyboardInterrupt):
        upload(project.server, b"orphan bytes")
    monkeypatch.undo()
    assert len(stored_keys(blobs, project.id)) == 1  # the object without metadata...
    assert project.server.get("/v1/files").get_json()["items"] == []  # ...which no client sees
    assert files.sweep(datetime.now(timezone.utc))["entries"] == 0  # not yet: it might still be running
    assert files.sweep(datetime.now(timezone.utc) + LATER)["entries"] == 1
    assert stored_keys(blobs, project.id) == []
    assert files.pending.count_documents({"project_id": project.id}) == 0


def test_sweep_keeps_files_whose_metadata_was_written(project, files, blobs):
    doc = upload(project.server, b"kept").get_json()
    # A pending entry left by a process that died after the metadata step.
    files.pending.insert_one({"_id": "left-behind", "kind": "upload", "project_id": project.id,
                              "file_id": doc["_id"], "key": f"projects/{project.id}/files/{doc['_id']}",
                              "started_ts": 0.0, "expires_ts": 1.0, "busy_until_ts": 0.0})
    files.sweep(datetime.now(timezone.utc))
    assert files.pending.count_documents({"_id": "left-behind"}) == 0
    assert project.server.get(f"/v1/files/{doc['_id']}/content").data == b"kept"


def test_sweep_lease_lets_one_process_sweep(app, files):
    from baas.files import background_runners

    svc = app.extensions["baas"]
    def sweeper():
        return next(runner for runner in background_runners(svc) if runner.name == "files.sweep")

    first, second = sweeper(), sweeper()  # as two processes would build them
    now = time.time()
    assert isinstance(first.run_once(now), dict)
    assert second.run_once(now + 1) is None  # the first holds the lease
    assert isinstance(first.run_once(now + 2), dict)  # the holder renews
    assert isinstance(second.run_once(now + first.lease_seconds + 3), dict)  # expired: another takes over


def _process_tree(pid: int) -> list:
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            children += _process_tree(int(child))
    return children + [pid]


def _files_under(folder: Path) -> list:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.mark.parametrize("app", ["local"], indirect=True)
def test_real_kill_during_an_upload(app, admin, client, server_process, files, tmp_path):
    project = create_project(admin, client)
    data_dir = tmp_path / "served"
    server = server_process({"storage.s3.endpoint": None, "data_dir": str(data_dir)})
    chunk = os.urandom(64 * 1024)
    project_dir = data_dir / "files" / "projects" / project.id

    def body():
        for _ in range(16):
            yield chunk
        # Kill once bytes reach the disk (after the pending entry): killing earlier would leave nothing to sweep.
        wait_until(lambda: files.pending.find_one({"project_id": project.id}) and _files_under(project_dir),
                   timeout=15, message="the upload's pending entry and half-written file")
        for pid in _process_tree(server.process.pid):  # granian serves from worker processes
            os.kill(pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        yield chunk

    try:
        response = requests.post(f"{server.url}/v1/files", data=body(), timeout=30,
                      headers={"X-API-Key": project.server_key, "Content-Type": "application/octet-stream"})
        raise AssertionError(f"the upload answered {response.status_code} {response.text} though its server was killed")
    except requests.RequestException:
        pass
    left = _files_under(project_dir)
    assert left, "the killed upload should have left a half-written file to clean up"
    # The sweep of any process on the same data (here: one on the same folder) removes what the kill left.
    from baas.files.service import FileService
    from baas.storage.blobs_local import LocalBlobStore

    sweeper = FileService(files.mongo, LocalBlobStore(data_dir / "files"), files.projects, files.hooks, files.config)
    sweeper.sweep(datetime.now(timezone.utc) + LATER)
    assert [p for p in Path(project_dir).rglob("*") if p.is_file()] == []
    assert files.pending.count_documents({"project_id": project.id}) == 0
    assert project.server.get("/v1/files").get_json()["items"] == []


def test_a_file_whose_object_is_gone_answers_404_not_500(project, blobs):
    """An object removed behind baas's back (a bucket lifecycle rule, an operator's cleanup) is a missing file."""
    from files_helpers import png_bytes

    plain = upload(project.server, b"soon gone").get_json()
    image = upload(project.server, png_bytes(), name="a.png", content_type="image/png").get_json()
    for doc in (plain, image):
        blobs.delete(f"projects/{project.id}/files/{doc['_id']}")
    for path in (f"/v1/files/{plain['_id']}/content", f"/v1/files/{image['_id']}/content?thumb=200x200"):
        response = project.server.get(path, headers={"Range": "bytes=0-3"} if "thumb" not in path else {})
        assert response.status_code == 404, (path, response.status_code, response.data[:200])
        body = response.get_json()
        assert body["code"] == 404 and "no longer stored" in body["message"]
    assert project.server.get(f"/v1/files/{plain['_id']}").status_code == 200  # the metadata stays for the admin
