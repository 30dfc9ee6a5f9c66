"""Range and conditional downloads, every case."""
from werkzeug.http import http_date

import pytest
from files_helpers import upload

DATA = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture
def stored(project):
    doc = upload(project.server, DATA).get_json()
    return project, f"/v1/files/{doc['_id']}/content", f'"{doc["sha256"]}"'


@pytest.mark.parametrize("header,start,end", [("bytes=0-99", 0, 99), ("bytes=10240-", None, None),
                                              ("bytes=100-", 100, 10239), ("bytes=-500", 9740, 10239),
                                              ("bytes=10000-99999", 10000, 10239), ("bytes=-99999", 0, 10239),
                                              ("bytes=5-5", 5, 5)])
def test_single_ranges(stored, header, start, end):
    project, url, _ = stored
    got = project.server.get(url, headers={"Range": header})
    if start is None:
        assert got.status_code == 416 and got.headers["Content-Range"] == "bytes */10240"
        assert got.get_json()["code"] == 416
        return
    assert got.status_code == 206
    assert got.headers["Content-Range"] == f"bytes {start}-{end}/10240"
    assert got.data == DATA[start:end + 1] and got.headers["Content-Length"] == str(end - start + 1)


@pytest.mark.parametrize("header", ["bytes=abc", "bytes=9-3", "bytes=-0", "bytes=-", "bytes=1-2-3"])
def test_malformed_ranges_are_416(stored, header):
    project, url, _ = stored
    got = project.server.get(url, headers={"Range": header})
    assert got.status_code == 416 and got.headers["Content-Range"] == "bytes */10240"


def test_other_units_and_multiple_ranges_get_the_whole_file(stored):
    project, url, _ = stored
    for header in ("items=0-5", "bytes=0-1,5-6"):
        got = project.server.get(url, headers={"Range": header})
        assert got.status_code == 200 and got.data == DATA


def test_conditional_requests(stored):
    project, url, etag = stored
    first = project.server.get(url)
    modified = first.headers["Last-Modified"]
    assert project.server.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert project.server.get(url, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    assert project.server.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    assert project.server.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    assert project.server.get(url, headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status_code == 200
    # If-None-Match wins over If-Modified-Since.
    assert project.server.get(url, headers={"If-None-Match": '"other"', "If-Modified-Since": modified}) \
        .status_code == 200
    not_modified = project.server.get(url, headers={"If-None-Match": "*"})
    assert not_modified.status_code == 304 and not_modified.headers["ETag"] == etag and not_modified.data == b""


def test_if_range(stored):
    project, url, etag = stored
    modified = project.server.get(url).headers["Last-Modified"]
    ranged = {"Range": "bytes=0-9"}
    assert project.server.get(url, headers={**ranged, "If-Range": etag}).status_code == 206
    assert project.server.get(url, headers={**ranged, "If-Range": modified}).status_code == 206
    changed = project.server.get(url, headers={**ranged, "If-Range": '"stale"'})
    assert changed.status_code == 200 and changed.data == DATA
    assert project.server.get(url, headers={**ranged, "If-Range": f"W/{etag}"}).status_code == 200
    assert project.server.get(url, headers={**ranged, "If-Range": http_date(0)}).status_code == 200


def test_head_gives_headers_without_body(stored):
    project, url, etag = stored
    got = project.server.open("HEAD", url)
    assert got.status_code == 200 and got.headers["Content-Length"] == "10240" and got.data == b""
    assert got.headers["ETag"] == etag and got.headers["Accept-Ranges"] == "bytes"
