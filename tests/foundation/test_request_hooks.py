"""BaasFlask looks a request's hooks up once per endpoint: same functions, same order as Flask's own walk."""
from flask import Blueprint, Flask, after_this_request

from baas.flask_app import BaasFlask


def _app(cls):
    app = cls(__name__)
    calls = []
    outer, inner = Blueprint("outer", __name__), Blueprint("inner", __name__)

    def hook(name):
        def before():
            calls.append(f"before {name}")

        def after(response):
            calls.append(f"after {name}")
            return response
        return before, after

    for name, target in (("app", app), ("outer", outer), ("inner", inner)):
        before, after = hook(name)
        target.before_request(before)
        target.after_request(after)
        target.after_request(lambda response, name=name: calls.append(f"after2 {name}") or response)
    app.url_value_preprocessor(lambda endpoint, values: calls.append(f"values {endpoint}"))

    @inner.get("/x/<n>")
    def view(n):
        @after_this_request
        def once(response):
            calls.append("after this request")
            return response
        calls.append("view")
        return n

    outer.register_blueprint(inner)
    app.register_blueprint(outer)
    return app, calls


def test_hooks_run_as_flask_runs_them():
    seen = {}
    for cls in (Flask, BaasFlask):
        app, calls = _app(cls)
        client = app.test_client()
        for path in ("/x/1", "/x/2", "/missing"):
            client.get(path)
        seen[cls] = calls
    assert seen[BaasFlask] == seen[Flask]
    assert "after this request" in seen[Flask] and "values outer.inner.view" in seen[Flask]


def test_a_before_hook_answer_stops_the_request():
    app = BaasFlask(__name__)
    app.before_request(lambda: ("early", 418))

    @app.get("/")
    def index():
        return "late"

    response = app.test_client().get("/")
    assert response.status_code == 418 and response.get_data() == b"early"
