"""The examples of docs/plugins.md run as written: the hook, the settings schema and the cloud function."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from baas.testing import ADMIN_TOKEN, ApiClient, create_project, sign_up_user

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.fixture
def doc_plugin(tmp_path, monkeypatch):
    blocks = python_blocks()
    hook = next(b for b in blocks if b.startswith("# my_rules.py"))
    settings = next(b for b in blocks if b.startswith("baas_plugin_settings"))
    quote = next(b for b in blocks if "def quote" in b)
    (tmp_path / "my_rules.py").write_text("\n".join([hook, settings, quote]))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_rules"
    sys.modules.pop("my_rules", None)


def test_the_guides_own_test_passes(make_app, doc_plugin):
    test_module = next(b for b in python_blocks() if b.startswith("# tests/test_my_rules.py"))
    namespace: dict = {}
    exec(compile(test_module, "docs/plugins.md", "exec"), namespace)  # the guide's test, as written
    namespace["test_negative_totals_are_refused"](make_app)


def test_the_guide_plugin_works_as_documented(make_app, doc_plugin):
    app = make_app({"plugins.modules": [doc_plugin]})
    admin = ApiClient(app.test_client(), {"Authorization": f"Bearer {ADMIN_TOKEN}"})
    project = create_project(admin, app.test_client())
    bad = admin.post(f"/admin/v1/projects/{project.id}/plugins/my_rules", json={"settings": {"max_totl": 1}})
    assert bad.get_json()["message"] == "Settings for plugin 'my_rules' are not valid: max_totl: Unknown setting."
    assert bad.get_json()["errors"] == {"settings": {"max_totl": ["Unknown setting."]}}
    assert admin.post(f"/admin/v1/projects/{project.id}/plugins/my_rules",
                      json={"settings": {"max_total": 1000}}).status_code == 201
    refused = project.server.post("/v1/collections/orders/documents", json={"total": -1})
    assert refused.status_code == 400 and refused.get_json()["message"] == "An order total cannot be negative."
    stored = project.server.post("/v1/collections/orders/documents", json={"total": 5}).get_json()
    assert stored["reviewed"] is False

    project.server.post("/v1/collections/products/documents", json={"_id": "sku-1", "price": 4, "on_sale": True})
    project.server.post("/v1/collections/products/documents", json={"_id": "sku-2", "price": 4})
    user = sign_up_user(project)
    quoted = user.post("/v1/functions/my_rules.quote", json={"sku": "sku-1", "quantity": 3})
    assert quoted.get_json() == {"result": {"total": 12, "for": user.user_id}}
    assert user.post("/v1/functions/my_rules.quote", json={"sku": "sku-2", "quantity": 1}).status_code == 409
    assert user.post("/v1/functions/my_rules.quote", json={"sku": "sku-1", "quantity": 0}).status_code == 400
