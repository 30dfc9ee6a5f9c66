"""schemathesis fuzzes the live server from its own /openapi.json: every answer must match the document.

Three identities, as real callers come: a server key, a client key with a signed-in user, and the admin token.
The admin run goes last and may not delete projects, so the fixtures the other runs need stay intact.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

SEED = "20240501"
EXAMPLES = "6"
CONFIG = Path(__file__).with_name("schemathesis.toml")
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
# Routes of the features built after the contract work (functions, plugins, jobs and their admin routes, export
# and import) are in the document but not fuzzed yet: their statuses and headers still have gaps (see docs/openapi.md).
NOT_YET_FUZZED_CLIENT = r"^/v1/(auth|functions)(/|$)"
NOT_YET_FUZZED_ADMIN = r"^/admin/v1/(functions|plugins|jobs)|/(plugins|export|import|revoke-sessions)(/|$)"


def _schemathesis(live, tmp_path: Path, headers: dict, *filters: str, pinned: dict | None = None) -> None:
    """`pinned`: path parameters given real values, so that operations on one resource reach their logic
    rather than answering 404 to every drawn id."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG.read_text() + "\n[parameters]\n" + "".join(
        f'"path.{name}" = "{value}"\n' for name, value in (pinned or {}).items()))
    command = [str(Path(sys.executable).with_name("st")), "--config-file", str(config), "run",
               live.url + "/openapi.json",
               "--checks", "all", "--seed", SEED, "--generation-deterministic", "--max-examples", EXAMPLES,
               "--workers", "1", "--phases", "examples,coverage,fuzzing", "--request-timeout", "20",
               "--suppress-health-check", "all", "--no-color", "--report-dir", str(tmp_path),
               *filters]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    # In tmp_path: schemathesis keeps a cache of failures in its working directory.
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                            env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)})
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]


@pytest.mark.parametrize("identity", ["server_key", "user", "admin"])
def test_the_server_answers_as_its_openapi_document_says(live, tmp_path, identity):
    resources = live.resources()
    if identity == "server_key":
        _schemathesis(live, tmp_path, {"X-API-Key": live.server_key}, "--include-path-regex", "^/v1/",
                      "--exclude-path-regex", NOT_YET_FUZZED_CLIENT, pinned=resources)
    elif identity == "user":
        token = live.sign_up()
        _schemathesis(live, tmp_path, {"X-API-Key": live.client_key, "Authorization": f"Bearer {token}"},
                      "--include-path-regex",
                      "^/v1/(auth|collections/.*/(documents|aggregate)|batch|project|files|push)",
                      pinned={"file_id": resources["file_id"], "upload_id": resources["upload_id"],
                              "subscription_id": live.subscribe(token)})
    else:
        _schemathesis(live, tmp_path, live.admin_headers, "--include-path-regex", "^/(admin/v1/|healthz|readyz)",
                      "--exclude-path-regex", NOT_YET_FUZZED_ADMIN, "--exclude-operation-id", "deleteProject",
                      pinned={"project_id": live.project_id, "message_id": resources["message_id"]})
