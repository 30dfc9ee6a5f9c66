import pytest

CHEAP_HASHING = {"auth.argon2_time_cost": 1, "auth.argon2_memory_kib": 1024, "auth.argon2_parallelism": 1}
ERROR_KEYS = {"code", "status", "message"}


def assert_error(response, *statuses):
    """A 4xx answer in the one error shape, with no traceback or secret in it."""
    assert response.status_code in statuses, (response.status_code, response.get_data(as_text=True)[:500])
    body = response.get_json(silent=True)
    assert isinstance(body, dict), response.get_data(as_text=True)[:500]
    assert ERROR_KEYS <= set(body), body
    assert body["code"] == response.status_code
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "$argon2" not in text and 'File "' not in text
    return body


@pytest.fixture
def open_collection(project):
    """Create collection `notes` open to any client and return its name."""
    def make(name="notes", rules=None):
        rules = rules or {a: "public" for a in ("list", "read", "create", "update", "delete", "aggregate")}
        response = project.server.put(f"/v1/collections/{name}", json={"rules": rules})
        assert response.status_code in (200, 201), response.get_json()
        return name
    return make
