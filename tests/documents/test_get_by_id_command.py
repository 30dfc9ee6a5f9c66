"""GET by id sends the database the id alone when nothing narrows the read, and every narrowing otherwise."""
from pymongo import monitoring

from baas.plugins.hookspecs import hookimpl
from baas.testing import ADMIN_TOKEN, ApiClient, create_project


class _Finds(monitoring.CommandListener):
    active = False
    filters: list = []

    def started(self, event):
        if self.active and event.command_name == "find" and not event.command["find"].startswith("_"):
            self.filters.append(dict(event.command)["filter"])

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


monitoring.register(_Finds())  # applies to clients made from now on; inactive outside the reads below


def _filters_of_get(caller, path):
    _Finds.filters = []
    _Finds.active = True
    try:
        response = caller.get(path)
    finally:
        _Finds.active = False
    assert response.status_code == 200, response.get_json()
    return [f for f in _Finds.filters]


def test_the_id_alone_without_rules_ttl_or_plugins_and_each_narrowing_otherwise(make_app):
    app = make_app()
    client = app.test_client()
    project = create_project(ApiClient(client, {"Authorization": f"Bearer {ADMIN_TOKEN}"}), client)
    public = {"read": "public", "create": "public", "list": "public"}
    assert project.server.put("/v1/collections/open", json={"rules": public}).status_code in (200, 201)
    doc = project.server.post("/v1/collections/open/documents", json={"n": 1}).get_json()
    path = f"/v1/collections/open/documents/{doc['_id']}"
    assert _filters_of_get(project.client, path)[-1] == {"_id": doc["_id"]}

    class Narrow:
        @hookimpl
        def baas_before_document_query(self, collection, action):
            return {"n": 1} if collection == "open" else None

    app.extensions["baas"].hooks.register(Narrow(), name="narrow")
    narrowed = _filters_of_get(project.client, path)[-1]
    assert narrowed != {"_id": doc["_id"]} and "_id" in str(narrowed) and "'n'" in str(narrowed)
