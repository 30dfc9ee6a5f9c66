"""The document views are called directly (DirectMethodView): same answers for every method, HEAD and OPTIONS,
and only flask-smorest's documentation-only wrappers are skipped."""
from flask_smorest import Blueprint

from baas.openapi import DirectMethodView


def test_every_method_of_a_document_still_reaches_its_view(project):
    server = project.server
    created = server.post("/v1/collections/notes/documents", json={"text": "a"})
    assert created.status_code == 201
    location = created.headers["Location"]
    assert server.get(location).get_json()["text"] == "a"
    head = server.open("HEAD", location)
    assert head.status_code == 200 and head.get_data() == b"" and head.headers["ETag"] == created.headers["ETag"]
    assert server.patch(location, json={"text": "b"}).get_json()["text"] == "b"
    assert server.put(location, json={"text": "c"}).get_json()["text"] == "c"
    assert server.get("/v1/collections/notes/documents").get_json()["items"][0]["text"] == "c"
    assert server.delete(location).status_code == 204
    assert server.get(location).status_code == 404


def test_options_and_unknown_methods_answer_as_before(project):
    server = project.server
    options = server.open("OPTIONS", "/v1/collections/notes/documents")
    assert options.status_code == 200
    assert set(options.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}
    assert server.patch("/v1/collections/notes/documents", json={"a": 1}).status_code == 405


def test_views_with_a_working_decorator_keep_it(project):
    # @blp.response dumps through its schema: a list of definitions is still marshalled, not returned raw.
    project.server.put("/v1/collections/notes", json={"rules": {"read": "public"}})
    listed = project.server.get("/v1/collections")
    assert listed.status_code == 200 and any(c["name"] == "notes" for c in listed.get_json())


def test_only_documentation_wrappers_are_skipped():
    blp = Blueprint("probe_direct", __name__)
    calls = []

    def work(view):
        def wrapper(*args, **kwargs):
            calls.append("decorator")
            return view(*args, **kwargs)
        wrapper.__wrapped__ = view
        return wrapper

    class View(DirectMethodView):
        @blp.alt_response(200)
        @work
        @blp.alt_response(201)
        def get(self):
            calls.append("view")
            return "ok"

    view = View.as_view("probe")
    assert view.view_class is View and view.methods == {"GET"}

    from flask import Flask
    with Flask(__name__).test_request_context("/", method="GET"):
        assert view() == "ok"
    assert calls == ["decorator", "view"]
