"""`baas files list|usage|delete` and `baas export|import` against a real `baas serve`."""
from __future__ import annotations

import json

import requests


def _project_with_files(http, project_id: str) -> tuple[str, list[dict]]:
    assert http.admin("POST", "/admin/v1/projects", json={"id": project_id, "name": project_id}).status_code == 201
    key = http.admin("POST", f"/admin/v1/projects/{project_id}/keys", json={"kind": "server", "name": "s"}).json()["key"]
    uploaded = []
    for name, data in (("report.pdf", b"%PDF-1.4\n" + b"x" * 2500), ("notes.txt", b"hello from the cli\n")):
        response = http.with_key(key, "POST", "/v1/files", params={"name": name}, data=data,
                                 headers={"Content-Type": "application/octet-stream"})
        assert response.status_code == 201, response.text
        uploaded.append(response.json())
    return key, uploaded


def test_files_list_usage_and_delete(baas, http, one_line_error):
    key, uploaded = _project_with_files(http, "cli-files")

    table = baas("files", "list", "cli-files")
    assert table.exit_code == 0, table.output
    header, *rows = table.output.strip().splitlines()
    assert header.split()[:4] == ["ID", "NAME", "SIZE", "TYPE"]
    assert [row.split()[1] for row in rows] == ["notes.txt", "report.pdf"]  # newest first
    assert "2.5 KB" in table.output and "application/pdf" in table.output

    listed = json.loads(baas("files", "list", "cli-files", "--json", "--sort", "name", "--limit", "1").output)
    assert [f["name"] for f in listed["items"]] == ["notes.txt"] and listed["next_cursor"]
    rest = json.loads(baas("files", "list", "cli-files", "--json", "--sort", "name", "--cursor",
                           listed["next_cursor"]).output)
    assert [f["name"] for f in rest["items"]] == ["report.pdf"] and "key" not in rest["items"][0]
    big = json.loads(baas("files", "list", "cli-files", "--json", "--filter", '{"size": {"$gt": 1000}}').output)
    assert [f["name"] for f in big["items"]] == ["report.pdf"]
    one_line_error(baas("files", "list", "cli-files", "--filter", '{"size": {"$where": "1"}}'), "HTTP 400")

    usage = baas("files", "usage", "cli-files")
    total = sum(f["size"] for f in uploaded)
    assert usage.exit_code == 0 and "stores 2 files" in usage.output and f"({total} bytes)" in usage.output
    assert json.loads(baas("files", "usage", "cli-files", "--json").output) == {
        "project_id": "cli-files", "bytes": total, "count": 2}

    doomed = uploaded[0]["_id"]
    declined = baas("files", "delete", "cli-files", doomed, input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    assert http.with_key(key, "GET", f"/v1/files/{doomed}").status_code == 200
    deleted = baas("files", "delete", "cli-files", doomed, "--yes")
    assert deleted.exit_code == 0 and "Deleted 1 file(s)" in deleted.output
    assert http.with_key(key, "GET", f"/v1/files/{doomed}").status_code == 404
    assert json.loads(baas("files", "usage", "cli-files", "--json").output)["count"] == 1
    one_line_error(baas("files", "delete", "cli-files", doomed, "--yes"), "HTTP 404")
    one_line_error(baas("files", "list", "no-such-project"), "HTTP 404")
    one_line_error(baas("files", "delete", "cli-files", "../../keys", "--yes"), "not a valid file id")


def test_export_then_import_as_a_copy_and_over_the_original(baas, http, tmp_path, one_line_error):
    key, uploaded = _project_with_files(http, "cli-move")
    assert http.admin("PUT", "/admin/v1/projects/cli-move/collections/notes", json={}).status_code == 201
    archive = tmp_path / "cli-move.tar.gz"
    exported = baas("export", "cli-move", "-o", archive)
    assert exported.exit_code == 0, exported.output
    assert archive.stat().st_size > 0 and "Exported project cli-move" in exported.output

    copied = baas("import", archive, "--as", "cli-copy", "--json")
    assert copied.exit_code == 0, copied.output
    result = json.loads(copied.output)
    assert result["project_id"] == "cli-copy" and result["files"] == 2 and result["keys"] == 0
    assert http.admin("GET", "/admin/v1/projects/cli-copy/collections/notes").status_code == 200
    copy_key = http.admin("POST", "/admin/v1/projects/cli-copy/keys", json={"kind": "server", "name": "s"}).json()
    for doc in uploaded:
        content = http.with_key(copy_key["key"], "GET", f"/v1/files/{doc['_id']}/content")
        original = http.with_key(key, "GET", f"/v1/files/{doc['_id']}/content")
        assert content.status_code == 200 and content.content == original.content

    one_line_error(baas("import", archive), "HTTP 409", "overwrite")
    assert http.with_key(key, "DELETE", f"/v1/files/{uploaded[0]['_id']}").status_code == 204
    replaced = baas("import", archive, "--overwrite", "--yes")
    assert replaced.exit_code == 0, replaced.output
    assert "Replaced project cli-move" in replaced.output and "2 files" in replaced.output
    back = http.with_key(key, "GET", f"/v1/files/{uploaded[0]['_id']}/content")  # the archive's keys work
    assert back.status_code == 200 and back.content.startswith(b"%PDF")

    truncated = tmp_path / "cut.tar.gz"
    truncated.write_bytes(archive.read_bytes()[:-100])
    one_line_error(baas("import", truncated, "--as", "cli-cut"), "HTTP 400", "nothing was imported")
    assert http.admin("GET", "/admin/v1/projects/cli-cut").status_code == 404
    assert requests.get(http.url + "/readyz", timeout=5).status_code == 200
