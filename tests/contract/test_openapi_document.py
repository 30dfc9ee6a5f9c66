"""/openapi.json is the contract SDKs are generated from: valid, exact about statuses, security and constraints."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from openapi_spec_validator import validate

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def spec(mongo_uri, tmp_path_factory):
    from baas import create_app

    app = create_app({"mongodb": {"uri": mongo_uri, "db_prefix": "spec_"}, "admin_token": "a" * 32,
                      "jwt": {"secret": "s" * 40}, "data_dir": str(tmp_path_factory.mktemp("spec"))})
    try:
        yield app.test_client().get("/openapi.json").get_json()
    finally:
        app.extensions["baas"].close()


def operations(spec):
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method], item.get("parameters", [])


def test_the_document_is_valid_openapi(spec):
    validate(spec)


def test_every_operation_has_a_unique_id_security_and_its_error_statuses(spec):
    ids = [op["operationId"] for _, _, op, _ in operations(spec)]
    assert len(ids) == len(set(ids)) and all(ids)
    assert spec["security"] == [{"apiKey": []}]
    assert set(spec["components"]["securitySchemes"]) == {"apiKey", "userToken", "adminToken"}
    for path, method, op, _ in operations(spec):
        where = f"{method.upper()} {path}"
        assert "default" not in op["responses"], where
        statuses = set(op["responses"])
        if path == "/metrics":  # the admin token, or the metrics token (also a bearer token)
            assert op["security"] == [{"adminToken": []}] and {"401", "404", "503"} <= statuses, where
        elif path.startswith("/admin/v1/"):
            assert op["security"] == [{"adminToken": []}], where
            assert {"400", "401", "503"} <= statuses, where
        elif path.startswith("/v1/"):
            assert all("apiKey" in requirement for requirement in op["security"]), where
            assert {"400", "401", "403", "429", "503"} <= statuses, where
        else:
            assert op["security"] == [], where
        if "{" in path:
            assert "404" in statuses, where
        if "requestBody" in op:
            assert {"413", "415", "422"} <= statuses, where
        for status, response in op["responses"].items():
            if status >= "400":
                assert response["$ref"].startswith("#/components/responses/"), where
    for name in ("TooManyRequests", "ServiceUnavailable"):
        assert "Retry-After" in spec["components"]["responses"][name]["headers"]
    for response in spec["components"]["responses"].values():
        assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_documents_declare_etags_conditional_headers_and_typed_parameters(spec):
    item = spec["paths"]["/v1/collections/{name}/documents/{doc_id}"]
    assert {p["name"] for p in item["get"]["parameters"]} == {"If-None-Match"}
    assert "304" in item["get"]["responses"] and "ETag" in item["get"]["responses"]["200"]["headers"]
    for method in ("put", "patch", "delete"):
        assert {p["name"] for p in item[method]["parameters"]} == {"If-Match"}
        assert "412" in item[method]["responses"]
    assert item["patch"]["requestBody"]["content"]["application/json"]["schema"]["minProperties"] == 1
    created = spec["paths"]["/v1/collections/{name}/documents"]["post"]["responses"]["201"]["headers"]
    assert {"ETag", "Location"} <= set(created)
    query = {p["name"]: p["schema"] for p in spec["paths"]["/v1/collections/{name}/documents"]["get"]["parameters"]}
    assert query["limit"] == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20}
    assert query["offset"]["type"] == "integer" and query["count"]["type"] == "boolean"
    path_parameters = {p["name"]: p["schema"] for p in item["parameters"]}
    assert path_parameters["name"]["pattern"] == "^[A-Za-z][A-Za-z0-9_]{0,63}$"
    assert path_parameters["doc_id"]["pattern"] == "^[A-Za-z0-9_-]{1,64}$"
    users = {p["name"]: p["schema"] for p in spec["paths"]["/v1/users"]["get"]["parameters"]}
    assert users["limit"]["type"] == "integer"


def test_the_constraints_the_server_enforces_are_stated(spec):
    schemas = spec["components"]["schemas"]
    assert schemas["Project"]["properties"]["settings"] == {"$ref": "#/components/schemas/ProjectSettings"}
    assert schemas["ProjectCreate"]["properties"]["id"]["pattern"] == "^[a-z][a-z0-9-]{1,38}[a-z0-9]$"
    signup = schemas["Signup"]["properties"]
    assert signup["email"]["format"] == "email"
    assert (signup["password"]["minLength"], signup["password"]["maxLength"]) == (8, 256)
    assert schemas["UserUpdate"]["properties"]["roles"]["items"]["pattern"] == "^[A-Za-z0-9_.:-]{1,64}$"
    for name in ("UserUpdate", "ProjectUpdate", "MeUpdate"):
        assert schemas[name]["minProperties"] == 1, name
    operations_schema = schemas["BatchIn"]["properties"]["operations"]
    assert (operations_schema["minItems"], operations_schema["maxItems"]) == (1, 100)
    assert "future" in schemas["KeyCreate"]["properties"]["expires_at"]["description"]
    assert schemas["AuthMailSettings"]["properties"]["link_base_url"]["format"] == "uri"
    assert schemas["ProjectDelete"]["required"] == ["confirm"]
    assert spec["paths"]["/admin/v1/projects/{project_id}"]["delete"]["requestBody"]["required"] is True
    assert schemas["UserUpdate"]["properties"]["disabled"]["type"] == "boolean"
    for probe in ("/healthz", "/readyz"):
        assert "$ref" in spec["paths"][probe]["get"]["responses"]["200"]["content"]["application/json"]["schema"]


def test_files_declare_ranges_redirects_tus_headers_and_typed_ids(spec):
    content = spec["paths"]["/v1/files/{file_id}/content"]["get"]
    assert {"Range", "If-Range", "If-None-Match", "If-Modified-Since"} <= {p["name"] for p in content["parameters"]}
    assert {"200", "206", "302", "304", "416"} <= set(content["responses"])
    assert "Content-Range" in content["responses"]["206"]["headers"]
    assert "Location" in content["responses"]["302"]["headers"]
    responses = spec["components"]["responses"]
    assert "Content-Range" in responses["RequestedRangeNotSatisfiable"]["headers"]
    upload = spec["paths"]["/v1/files"]["post"]
    assert {"multipart/form-data", "application/octet-stream"} <= set(upload["requestBody"]["content"])
    assert "409" in spec["paths"]["/v1/files/uploads"]["post"]["responses"]  # local storage: no direct transfer
    tus = spec["paths"]["/v1/files/tus/{upload_id}"]
    for path, method in [("/v1/files/tus/", "post"), ("/v1/files/tus/{upload_id}", "head"),
                         ("/v1/files/tus/{upload_id}", "patch"), ("/v1/files/tus/{upload_id}", "delete")]:
        operation = spec["paths"][path][method]
        resumable = next(p for p in operation["parameters"] if p["name"] == "Tus-Resumable")
        assert resumable["required"] and resumable["schema"]["enum"] == ["1.0.0"], (path, method)
        assert operation["responses"]["412"]["$ref"].endswith("/PreconditionFailedWithTusResumableTusVersion")
    assert "Tus-Version" in responses["PreconditionFailedWithTusResumableTusVersion"]["headers"]
    assert "Upload-Offset" in responses["ConflictWithUploadOffset"]["headers"]
    assert {"Upload-Offset", "Upload-Checksum"} <= {p["name"] for p in tus["patch"]["parameters"]}
    assert set(tus["patch"]["requestBody"]["content"]) == {"application/offset+octet-stream"}
    assert {"Upload-Offset", "Upload-Length", "Upload-Expires"} <= set(tus["head"]["responses"]["200"]["headers"])
    # The method override: PATCH and DELETE sent as POST. Its answers share the PATCH's, described for both.
    override = next(p for p in tus["post"]["parameters"] if p["name"] == "X-HTTP-Method-Override")
    assert override["required"] and override["schema"]["enum"] == ["PATCH", "DELETE"]
    assert tus["post"]["responses"]["409"] == tus["patch"]["responses"]["409"]
    assert "Upload-Offset is not the upload's offset" in responses["ConflictWithUploadOffset"]["description"]
    assert "Allow" in responses[tus["post"]["responses"]["405"]["$ref"].rsplit("/", 1)[1]]["headers"]
    file_id = next(p for p in spec["paths"]["/v1/files/{file_id}"]["parameters"] if p["name"] == "file_id")
    assert file_id["schema"]["pattern"] == "^[0-9a-f]{24}$"


def test_push_bodies_are_required_and_state_the_rules_the_service_checks(spec):
    for path in ("/v1/push/subscriptions", "/v1/push/messages", "/admin/v1/projects/{project_id}/push/messages"):
        assert spec["paths"][path]["post"]["requestBody"]["required"] is True, path
    schemas = spec["components"]["schemas"]
    keys = schemas["SubscriptionKeys"]["properties"]
    assert "{87}" in keys["p256dh"]["pattern"] and "{22}" in keys["auth"]["pattern"]
    assert schemas["SubscriptionIn"]["properties"]["endpoint"]["maxLength"] == 2048
    audience = schemas[spec["components"]["schemas"]["MessageIn"]["properties"]["audience"]["$ref"].split("/")[-1]]
    assert (audience["minProperties"], audience["maxProperties"]) == (1, 1)
    assert schemas["MessageIn"]["properties"]["urgency"]["enum"] == ["very-low", "low", "normal", "high"]


# Operations with dedicated clients instead of a generated SDK: the tus protocol (tus-js-client, TUSKit, tuspy)
# and project archives (`baas export` / `baas import`); openapi-python-client has no model for their bodies.
NOT_FOR_SDKS = {("/v1/files/tus/", "post"), ("/v1/files/tus/{upload_id}", "patch"),
                ("/v1/files/tus/{upload_id}", "post"),
                ("/admin/v1/projects/{project_id}/export", "get"), ("/admin/v1/projects/import", "post")}


def test_openapi_python_client_generates_every_model_and_operation_without_warnings(spec, tmp_path):
    spec = json.loads(json.dumps(spec))
    for path, method in NOT_FOR_SDKS:
        del spec["paths"][path][method]
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(spec))
    config = tmp_path / "generator.yaml"
    config.write_text("post_hooks: []\n")  # no formatter runs; the generated code is what is checked
    generator = Path(sys.executable).with_name("openapi-python-client")
    result = subprocess.run([str(generator), "generate", "--path", str(document), "--meta", "none",
                             "--fail-on-warning", "--config", str(config), "--output-path", str(tmp_path / "sdk")],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0 and "Warning" not in result.stdout, result.stdout + result.stderr
    models = {path.stem for path in (tmp_path / "sdk" / "models").glob("*.py")}
    assert {"project", "project_settings", "document", "session", "user", "error", "health"} <= models
    generated = {path.stem for path in (tmp_path / "sdk" / "api").glob("*/*.py")}
    snake = {"".join("_" + c.lower() if c.isupper() else c for c in op["operationId"])
             for _, _, op, _ in operations(spec)}
    assert snake <= generated, snake - generated
