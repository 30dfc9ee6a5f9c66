"""Client queries carry a time limit, and a query the database stops is a clear 400."""
import pytest
from pymongo import monitoring
from pymongo.errors import ExecutionTimeout, OperationFailure

from baas.config import ConfigError, from_mapping
from baas.documents.service import query_refused
from baas.testing import ADMIN_TOKEN, ApiClient, create_project


class _SeenCommands(monitoring.CommandListener):
    active = False
    commands: list = []

    def started(self, event):
        if self.active:
            self.commands.append((event.command_name, dict(event.command)))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


_listener = _SeenCommands()
monitoring.register(_listener)  # applies to clients made from now on; inactive outside the test below


def test_list_count_expand_and_aggregate_send_the_time_limit(make_app):
    app = make_app({"mongodb.query_time_limit_ms": 1234})
    client = app.test_client()
    project = create_project(ApiClient(client, {"Authorization": f"Bearer {ADMIN_TOKEN}"}), client)
    schema = {"type": "object", "properties": {"author": {"type": "string", "x-ref": "authors"}}}
    assert project.server.put("/v1/collections/posts", json={"schema": schema}).status_code in (200, 201)
    author = project.server.post("/v1/collections/authors/documents", json={"name": "Ada"}).get_json()
    assert project.server.post("/v1/collections/posts/documents", json={"author": author["_id"]}).status_code == 201

    _SeenCommands.commands = []
    _SeenCommands.active = True
    try:
        listed = project.server.get("/v1/collections/posts/documents",
                                    query_string={"filter": '{"author": {"$regex": "^[0-9a-f]"}}', "count": "true",
                                                  "expand": "author"})
        aggregated = project.server.get("/v1/collections/posts/aggregate", query_string={"group_by": "author"})
    finally:
        _SeenCommands.active = False
    assert listed.status_code == 200 and aggregated.status_code == 200
    assert listed.get_json()["items"][0]["author"]["name"] == "Ada"
    finds = [command for name, command in _SeenCommands.commands if name == "find"]
    assert len(finds) >= 2, "the page and the expand lookup"
    assert all(command.get("maxTimeMS") == 1234 for command in finds)
    aggregates = [command for name, command in _SeenCommands.commands if name == "aggregate"]
    assert len(aggregates) >= 2, "count_documents and the aggregate endpoint both aggregate"
    assert all(command.get("maxTimeMS") == 1234 for command in aggregates)


def test_a_stopped_query_is_a_400_that_says_why():
    timeout = ExecutionTimeout("operation exceeded time limit", 50, {"errmsg": "operation exceeded time limit"})
    error = query_refused(timeout, "filter")
    assert error.status == 400 and "longer than the server allows" in error.message
    assert error.errors == {"filter": ["Query time limit exceeded."]}
    refused = query_refused(OperationFailure('near "select": syntax error', 1, {"errmsg": 'near "select": syntax '
                                                                                         'error'}), "count")
    # The database's own words (here the embedded database's SQL) stay in the log.
    assert refused.status == 400 and "could not run this query" in refused.message and "count" in refused.errors
    assert "syntax" not in refused.message and "select" not in refused.message


def test_config_rejects_a_non_positive_limit():
    with pytest.raises(ConfigError, match="mongodb.query_time_limit_ms"):
        from_mapping({"mongodb": {"query_time_limit_ms": 0}})
