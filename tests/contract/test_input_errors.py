"""Files and push answer every invalid body, query and header with 400 in the one error format: never 422 (their
services check input, as the CLI and plugins call them too), never a 500, and nothing is stored."""
FILE_ID = "0" * 24
UPLOAD_ID = "0" * 32

# (caller, method, path, body or None, query, headers): each breaks the operation's documented schema.
BAD_INPUTS = [
    ("server", "PATCH", "/v1/files/settings", {"max_file_bytes": "big"}, None, None),
    ("server", "PATCH", "/v1/files/settings", {"unknown": 1}, None, None),
    ("server", "PATCH", "/v1/files/settings", {"presigned_downloads": 1}, None, None),
    ("server", "PATCH", f"/v1/files/{FILE_ID}", {"public": "yes"}, None, None),
    ("server", "PATCH", f"/v1/files/{FILE_ID}", {"unknown": 1}, None, None),
    ("server", "POST", "/v1/files/uploads", {"size": -1}, None, None),
    ("server", "POST", "/v1/files/uploads", {"unknown": 1}, None, None),
    ("server", "GET", "/v1/files", None, {"limit": "many"}, None),
    ("server", "GET", f"/v1/files/{FILE_ID}/content", None, {"fit": "stretch"}, None),
    ("server", "GET", f"/v1/files/{FILE_ID}/content", None, {"download": "maybe"}, None),
    ("server", "POST", "/v1/files/tus/", None, None, {"Tus-Resumable": "1.0.0", "Upload-Length": "-1"}),
    ("server", "POST", "/v1/files/tus/", None, None, {"Tus-Resumable": "1.0.0"}),
    ("server", "PATCH", f"/v1/files/tus/{UPLOAD_ID}", None, None,
     {"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Upload-Checksum": "crc32 AAAA",
      "Content-Type": "application/offset+octet-stream"}),
    ("server", "POST", "/v1/push/messages", {"audience": {"all": True}}, None, None),
    ("server", "POST", "/v1/push/messages", {"audience": {"all": False}, "notification": {"title": "t"}}, None, None),
    ("server", "POST", "/v1/push/messages", {"audience": {"all": True}, "notification": {"title": 5}}, None, None),
    ("server", "POST", "/v1/push/messages", {"audience": {"all": True}, "notification": {"title": "t"},
                                             "urgency": "now"}, None, None),
    ("server", "POST", "/v1/push/messages", {"audience": {"all": True}, "notification": {"data": {"a\x00": 1}}},
     None, None),
    ("server", "GET", "/v1/push/messages", None, {"limit": "0"}, None),
    ("admin", "GET", "/admin/v1/projects/{project}/push/messages", None, {"limit": "x"}, None),
    ("admin", "POST", "/admin/v1/projects/{project}/push/messages", {"audience": {}, "notification": {}}, None, None),
    ("user", "POST", "/v1/push/subscriptions", {"endpoint": "https://push.example.com/x",
                                                "keys": {"p256dh": "A", "auth": "A"}}, None, None),
    ("user", "POST", "/v1/push/subscriptions", {"endpoint": "ftp://push.example.com/x",
                                                "keys": {"p256dh": "A" * 87, "auth": "A" * 22}}, None, None),
    ("user", "POST", "/v1/push/subscriptions", {"keys": {}}, None, None),
]


def send(client, method, path, body, query, headers):
    extra = {"json": body} if body is not None else {}
    return client.open(method, path, query_string=query, headers=headers or {}, **extra)


def test_invalid_input_on_files_and_push_is_400_in_the_one_error_format_and_stores_nothing(project, admin,
                                                                                         make_user):
    clients = {"server": project.server, "admin": admin, "user": make_user(project)}
    wrong = []
    for caller, method, path, body, query, headers in BAD_INPUTS:
        response = send(clients[caller], method, path.format(project=project.id), body, query, headers)
        error = response.get_json(silent=True) or {}
        if response.status_code != 400 or error.get("code") != 400 or not error.get("message") \
                or "Traceback" in response.get_data(as_text=True):
            wrong.append((method, path, body, query, response.status_code, response.get_data(as_text=True)[:300]))
    assert wrong == []
    assert project.server.get("/v1/push/messages").get_json()["messages"] == []
    assert clients["user"].get("/v1/push/subscriptions").get_json() == []
    assert project.server.get("/v1/files").get_json()["items"] == []
    settings = project.server.get("/v1/files/settings").get_json()
    assert settings["presigned_downloads"] is False and settings["max_file_bytes"] > 1
