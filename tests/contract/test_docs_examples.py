"""The curl examples of README.md and docs/data-api.md run as printed, in order, against a live server.

Each `curl` command of a ```sh block runs through bash with the variables the page tells readers to set. The
expected answer is read from the comments that follow it (`# HTTP/1.1 201 Created`, `# 412 {...}`, a trailing
`# 204`, or the per-operation statuses of a printed `{"results": [...]}`); without one, a 2xx is expected.
"""
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import requests

DOCS = Path(__file__).resolve().parents[2] / "docs"
_STATUS_LINE = re.compile(r"^#\s*HTTP/1\.1 (\d{3}) (.+)$")
_STATUS = re.compile(r"^#\s*(\d{3})\b")
_TRAILING_STATUS = re.compile(r"#\s*(\d{3})\s*(?:;.*)?$")


def curl_examples(markdown: str) -> list[dict]:
    """Every curl command in the page's sh blocks, with what its comments say it answers."""
    examples = []
    for block in re.findall(r"```sh\n(.*?)```", markdown, flags=re.S):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            if not lines[i].startswith("curl "):
                i += 1
                continue
            command = [lines[i]]
            while (command[-1].endswith("\\") or "\n".join(command).count("'") % 2) and i + 1 < len(lines):
                i += 1
                command.append(lines[i])
            comments = []
            while i + 1 < len(lines) and lines[i + 1].startswith("#"):
                i += 1
                comments.append(lines[i])
            examples.append({"command": "\n".join(command), **_expectation(command[-1], comments)})
            i += 1
    return examples


def _expectation(last_line: str, comments: list) -> dict:
    expected = {"status": None, "phrase": None, "results": None}
    trailing = _TRAILING_STATUS.search(last_line.split("'")[-1])
    if trailing:
        expected["status"] = int(trailing.group(1))
    for comment in comments[:1]:
        if match := _STATUS_LINE.match(comment):
            expected["status"], expected["phrase"] = int(match.group(1)), match.group(2).strip()
        elif match := _STATUS.match(comment):
            expected["status"] = int(match.group(1))
    printed = " ".join(comments)
    if '"results"' in printed:
        expected["results"] = [int(s) for s in re.findall(r'"status": (\d{3})', printed)]
    return expected


def _run(example: dict, env: dict, tmp_path: Path):
    head, body = tmp_path / "head", tmp_path / "body"
    script = f"""curl() {{ command curl -sS -D {head} -o {body} "$@"; }}\n{example['command']}\n"""
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, (example["command"], result.stderr)
    status_line = head.read_text().splitlines()[0]
    text = body.read_text()
    if text.startswith("HTTP/"):  # -i puts the head in the body too
        text = text.split("\n\n", 1)[-1]
    return status_line, (json.loads(text) if text.strip() else None)


def _keys(live, project_id: str) -> tuple[str, str]:
    made = [requests.post(f"{live.url}/admin/v1/projects/{project_id}/keys", json={"kind": kind},
                          headers=live.admin_headers, timeout=10) for kind in ("client", "server")]
    assert all(response.status_code == 201 for response in made), [r.text for r in made]
    return made[0].json()["key"], made[1].json()["key"]


@pytest.fixture(scope="module")
def my_app(live):
    """docs/data-api.md's variables: a project my-app, its keys, a signed-in user and the admin token."""
    requests.post(live.url + "/admin/v1/projects", json={"id": "my-app", "name": "My App"},
                  headers=live.admin_headers, timeout=10).raise_for_status()
    client_key, server_key = _keys(live, "my-app")
    token = requests.post(live.url + "/v1/auth/signup", json={"email": "ada@example.com",
                                                              "password": "correct horse battery"},
                          headers={"X-API-Key": client_key}, timeout=10).json()["access_token"]
    return {"BASE": live.url, "CK": client_key, "SK": server_key, "TOKEN": token,
            "ADMIN_TOKEN": live.admin_headers["Authorization"].split()[1]}


@pytest.fixture(scope="module")
def first_start(live):
    """README's variables: the keys the first start printed for the project `default`, and the admin token."""
    client_key, server_key = _keys(live, "default")
    return {"BAAS": live.url, "CLIENT_KEY": client_key, "SERVER_KEY": server_key,
            "ADMIN_TOKEN": live.admin_headers["Authorization"].split()[1]}


def _run_page(page: Path, variables: dict, tmp_path: Path, minimum: int) -> None:
    examples = curl_examples(page.read_text())
    assert len(examples) >= minimum
    env = {"PATH": os.environ["PATH"], **variables}
    for example in examples:
        status_line, body = _run(example, env, tmp_path)
        status = int(status_line.split()[1])
        where = f"{example['command']}\n-> {status_line} {json.dumps(body)[:500]}"
        if example["status"] is None:
            assert 200 <= status < 300, where
        else:
            assert status == example["status"], where
        if example["phrase"]:
            assert status_line.strip() == f"HTTP/1.1 {example['status']} {example['phrase']}", where
        if example["results"] is not None:
            assert [r["status"] for r in body["results"]] == example["results"], where
        # What the pages tell readers to copy from an answer: a new document's _id, a new user's access token.
        if status == 201 and isinstance(body, dict):
            if "_id" in body:
                env["ID"] = body["_id"]
            if "access_token" in body:
                env["TOKEN"] = body["access_token"]


def test_every_curl_example_of_the_data_api_answers_as_printed(live, my_app, tmp_path):
    _run_page(DOCS / "data-api.md", my_app, tmp_path, minimum=15)


def test_every_curl_example_of_the_readme_answers_as_printed(live, first_start, tmp_path):
    _run_page(DOCS.parent / "README.md", first_start, tmp_path, minimum=4)
