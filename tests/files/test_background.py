"""Work kept off request threads: file tasks in MongoDB (hashing, a deleted user's files) and bounded thumbnails."""
import hashlib
import threading
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest

from baas.files import thumbs
from baas.files.tasks import FileTaskRunner
from baas.testing import ApiClient, wait_until
from files_helpers import open_rules, png_bytes, random_bytes, stored_keys, upload

TUS = {"Tus-Resumable": "1.0.0"}
LATER = timedelta(hours=25)  # past the tus expiry


def _tus_upload_seen_by_several_processes(project, files, data: bytes) -> str:
    """A tus upload whose last PATCH lands on a process without the running hash: its sha256 is left to
    background work. Returns the file id."""
    created = project.server.post("/v1/files/tus/", headers={**TUS, "Upload-Length": str(len(data))})
    assert created.status_code == 201, created.get_json()
    url = urlsplit(created.headers["Location"]).path
    half = len(data) // 2
    for offset, chunk in ((0, data[:half]), (half, data[half:])):
        files._running_hashes.clear()
        response = project.server.patch(url, data=chunk, headers={
            **TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"})
        assert response.status_code == 204, response.get_json()
    return created.headers["Baas-File-Id"]


@pytest.mark.parametrize("app", ["local"], indirect=True)
def test_a_killed_workers_task_is_taken_over_by_another(project, make_user, files, blobs, monkeypatch):
    open_rules(project)
    assert project.server.patch("/v1/files/settings", json={"delete_with_user": True}).status_code == 200
    user = make_user(project)
    for n in range(3):
        assert upload(user, f"file {n}".encode()).status_code == 201
    started = time.monotonic()
    assert project.server.delete(f"/v1/users/{user.user_id}").status_code == 204
    assert len(stored_keys(blobs, project.id)) == 3  # the request only queued the work
    assert files.tasks.count_documents({"project_id": project.id, "kind": "user_files"}) == 1

    first, second = FileTaskRunner(files, 0.05), FileTaskRunner(files, 0.05)  # two worker processes
    removed = []
    original = files._remove

    def dies_after_one(project_id, doc):
        if removed:
            raise KeyboardInterrupt("worker killed")  # BaseException: nothing in the runner cleans up
        removed.append(doc["_id"])
        return original(project_id, doc)

    monkeypatch.setattr(files, "_remove", dies_after_one)
    with pytest.raises(KeyboardInterrupt):
        first.run_once()
    monkeypatch.undo()
    assert len(stored_keys(blobs, project.id)) == 2
    task = files.tasks.find_one({"project_id": project.id})
    assert task["lease_owner"] == first.owner
    assert second.run_once() == 0  # the dead worker's lease still holds: no double work
    assert files.tasks.count_documents({"project_id": project.id}) == 1
    assert second.run_once(task["lease_until"] + 1) == 1  # its lease ran out: taken over and finished
    assert stored_keys(blobs, project.id) == []
    assert files.tasks.count_documents({"project_id": project.id}) == 0
    assert time.monotonic() - started < 60


def test_hash_task_queued_before_the_metadata_survives_a_crash_between(project, files, blobs, task_runner,
                                                                      monkeypatch):
    def die(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(files, "_record", die)
    monkeypatch.setattr(files, "_discard", lambda *args: None)
    with pytest.raises(KeyboardInterrupt):
        _tus_upload_seen_by_several_processes(project, files, random_bytes(300_000))
    monkeypatch.undo()
    task = files.tasks.find_one({"project_id": project.id})
    assert task is not None and task["kind"] == "hash"
    # The upload may still be finishing (its pending entry is there): the task waits instead of being dropped.
    assert task_runner.run_once() == 0
    waiting = files.tasks.find_one({"_id": task["_id"]})
    assert waiting is not None and waiting["due_ts"] > task["due_ts"] and waiting["lease_until"] == 0.0
    files.sweep(datetime.now(timezone.utc) + LATER)  # the dead upload is cleaned up...
    assert stored_keys(blobs, project.id) == []
    assert task_runner.run_once(time.time() + 60) == 1  # ...and then its task is dropped
    assert files.tasks.count_documents({"project_id": project.id}) == 0


def test_background_hash_keeps_a_concurrent_patch(project, files, background):
    data = random_bytes(700_000)
    real_open = files.blobs.open
    renamed = threading.Event()

    def open_while_patched(key, *args, **kwargs):
        chunks = real_open(key, *args, **kwargs)
        hashing = threading.current_thread().name == "baas-files.tasks"  # the worker's read, not the upload's
        if hashing and not renamed.is_set():
            # The hash worker read the metadata; a client changes it before the hash is written.
            response = project.server.patch(f"/v1/files/{file_id}", json={"name": "renamed.bin"})
            assert response.status_code == 200, response.get_json()
            renamed.set()
        return chunks

    files.blobs.open = open_while_patched
    try:
        file_id = _tus_upload_seen_by_several_processes(project, files, data)
        wait_until(lambda: project.server.get(f"/v1/files/{file_id}").get_json()["sha256_state"] == "done",
                   timeout=20, message="the background hash")
    finally:
        del files.blobs.open
    doc = project.server.get(f"/v1/files/{file_id}").get_json()
    assert renamed.is_set()
    assert doc["name"] == "renamed.bin" and doc["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("app", ["local"], indirect=True)
def test_thumbnail_renders_are_bounded_and_the_rest_get_503(app, project, files, monkeypatch):
    assert (files.thumbnails.workers, app.extensions["baas"].config["files"]["thumbnail_queue"]) == (1, 1)
    doc = upload(project.server, png_bytes(300, 200), name="p.png").get_json()
    url = f"/v1/files/{doc['_id']}/content"
    release = threading.Event()
    rendering = threading.Event()
    real_render = thumbs.render

    def slow_render(*args):
        rendering.set()
        assert release.wait(20)
        return real_render(*args)

    monkeypatch.setattr(thumbs, "render", slow_render)
    statuses = []

    def fetch(size):
        client = ApiClient(app.test_client(), {"X-API-Key": project.server_key})
        statuses.append(client.get(url, query_string={"thumb": size}).status_code)

    first = threading.Thread(target=fetch, args=("64x64",))
    first.start()
    assert rendering.wait(10)
    same = threading.Thread(target=fetch, args=("64x64",))  # the same thumbnail waits for that render
    queued = threading.Thread(target=fetch, args=("200x200",))
    same.start()
    queued.start()
    wait_until(lambda: files.thumbnails._slots._value == 0, timeout=10, message="the queued render")
    busy = project.server.get(url, query_string={"thumb": "400x400"})
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "2"
    assert busy.get_json()["code"] == 503 and "retry" in busy.get_json()["message"]
    release.set()
    for thread in (first, same, queued):
        thread.join(20)
    assert statuses == [200, 200, 200]
    assert files.thumbnails.renders == 2  # the two requests for 64x64 shared one render
    monkeypatch.undo()
    again = project.server.get(url, query_string={"thumb": "400x400"})
    assert again.status_code == 200
    cached = project.server.get(url, query_string={"thumb": "64x64"})
    assert cached.status_code == 200 and files.thumbnails.renders == 3  # served from storage: no decoding


def test_an_upload_whose_pending_entry_cannot_be_written_stores_nothing(project, files, blobs, monkeypatch):
    """The pending entry is written while the body arrives; the object is completed only once it exists."""
    from pymongo.errors import AutoReconnect

    def database_gone(*args, **kwargs):
        raise AutoReconnect("connection refused")

    monkeypatch.setattr(files, "_pending_insert", database_gone)
    response = upload(project.server, random_bytes(200_000))
    assert response.status_code == 503 and response.get_json()["code"] == 503
    monkeypatch.undo()
    assert stored_keys(blobs, project.id) == []
    assert project.server.get("/v1/files").get_json()["items"] == []


def test_the_pending_entry_of_a_finished_upload_is_removed_after_the_answer(project, files):
    doc = upload(project.server, b"settled").get_json()
    wait_until(lambda: files.pending.count_documents({"project_id": project.id}) == 0, timeout=10,
               message="the finished upload's pending entry to be removed")
    assert project.server.get(f"/v1/files/{doc['_id']}/content").data == b"settled"
