"""Sign-up, log-in, anonymous users, password storage, plugin hooks."""
import pytest

from auth_helpers import PASSWORD, body_of, login, outbox_mails, signup, token_in
from baas.errors import Rejected
from baas.plugins.hookspecs import hookimpl


def test_signup_returns_user_and_tokens(project):
    response = signup(project, "  Ada@Example.COM ", data={"name": "Ada", "tags": ["x"]})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["user"]["email"] == "ada@example.com"
    assert body["user"]["data"] == {"name": "Ada", "tags": ["x"]}
    assert body["user"]["email_verified"] is False and body["user"]["anonymous"] is False
    assert body["user"]["roles"] == [] and body["user"]["disabled"] is False
    assert body["user"]["id"].startswith("u_")
    assert "password_hash" not in body["user"] and "password" not in body["user"]
    assert body["access_token"].count(".") == 2
    assert body["refresh_token"].startswith("baas_rt_")
    assert body["token_type"] == "Bearer" and body["expires_in"] == 15 * 60
    me = project.client.with_token(body["access_token"]).get("/v1/auth/me")
    assert me.status_code == 200 and me.get_json()["id"] == body["user"]["id"]


def test_signup_refuses_duplicates_and_bad_input(project):
    assert signup(project, "bob@example.com").status_code == 201
    duplicate = signup(project, "BOB@example.com ")
    assert duplicate.status_code == 409
    assert "already exists" in duplicate.get_json()["message"]
    bad_email = signup(project, "not-an-email")
    assert bad_email.status_code == 400 and "email" in bad_email.get_json()["errors"]
    short = signup(project, "c@example.com", password="short")
    assert short.status_code == 400 and "at least 8" in short.get_json()["message"]
    long = signup(project, "c@example.com", password="x" * 257)
    assert long.status_code == 400 and "at most 256" in long.get_json()["message"]
    assert signup(project, "c@example.com", password="x" * 2000).status_code == 422
    assert signup(project, "c@example.com", password=" " * 10).status_code == 400
    operator = signup(project, "c@example.com", data={"$where": "1"})
    assert operator.status_code == 400
    dotted = signup(project, "c@example.com", data={"a": {"b.c": 1}})
    assert dotted.status_code == 400
    huge = signup(project, "c@example.com", data={"blob": "x" * 20_000})
    assert huge.status_code == 400
    missing = project.client.post("/v1/auth/signup", json={"email": "c@example.com"})
    assert missing.status_code == 422 and "password" in missing.get_json()["errors"]["json"]
    unknown = project.client.post("/v1/auth/signup", json={"email": "c@example.com", "password": PASSWORD,
                                                            "roles": ["admin"]})
    assert unknown.status_code == 422, "clients must not pick their own roles"
    injected = project.client.post("/v1/auth/signup", json={"email": {"$ne": None}, "password": PASSWORD})
    assert injected.status_code == 422
    # None of the refused requests left a user behind.
    listed = project.server.get("/v1/users").get_json()["users"]
    assert [u["email"] for u in listed] == ["bob@example.com"]


def test_signup_without_api_key_or_with_unknown_key(client):
    assert client.post("/v1/auth/signup", json={"email": "a@example.com", "password": PASSWORD}).status_code == 401
    response = client.post("/v1/auth/signup", json={"email": "a@example.com", "password": PASSWORD},
                           headers={"X-API-Key": "baas_ck_nope"})
    assert response.status_code == 401


def test_login_and_same_message_for_wrong_email_or_password(project):
    created = signup(project, "eve@example.com").get_json()
    ok = login(project, "EVE@example.com")
    assert ok.status_code == 200
    body = ok.get_json()
    assert body["user"]["id"] == created["user"]["id"]
    assert body["user"]["last_login_at"] is not None
    assert body["access_token"] != created["access_token"] and body["refresh_token"] != created["refresh_token"]
    wrong_password = login(project, "eve@example.com", "wrong password!")
    unknown_email = login(project, "nobody@example.com")
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.get_json()["message"] == unknown_email.get_json()["message"] == "Wrong email or password."
    malformed = login(project, "no-at-sign")
    assert malformed.status_code == 401 and malformed.get_json()["message"] == "Wrong email or password."
    assert project.client.post("/v1/auth/login", json={"email": "eve@example.com",
                                                       "password": {"$gt": ""}}).status_code == 422


def test_password_policy_per_project(auth_app, new_project):
    app, admin, client = auth_app()
    project = new_project(admin, client, settings={"auth": {"password_min_length": 12,
                                                            "password_max_length": 20}})
    assert signup(project, "a@example.com", "elevenchars").status_code == 400
    assert signup(project, "a@example.com", "x" * 21).status_code == 400
    assert signup(project, "a@example.com", "twelve chars").status_code == 201
    # Projects cannot go below the floor of 8 or set min above max.
    too_weak = admin.patch(f"/admin/v1/projects/{project.id}", json={"settings": {"auth": {"password_min_length": 4}}})
    assert too_weak.status_code == 422
    crossed = admin.patch(f"/admin/v1/projects/{project.id}",
                          json={"settings": {"auth": {"password_min_length": 30, "password_max_length": 20}}})
    assert crossed.status_code == 400 and "password_min_length" in crossed.get_json()["errors"]
    unknown = admin.patch(f"/admin/v1/projects/{project.id}", json={"settings": {"auth": {"bogus": True}}})
    assert unknown.status_code == 422


def test_default_hashing_is_argon2id_rfc9106(make_app):
    from baas.testing import ADMIN_TOKEN, ApiClient, create_project

    app = make_app()  # production defaults
    client = app.test_client()
    project = create_project(ApiClient(client, {"Authorization": f"Bearer {ADMIN_TOKEN}"}), client)
    user_id = signup(project, "hash@example.com").get_json()["user"]["id"]
    stored = app.extensions["baas"].mongo.project_db(project.id)["_users"].find_one({"_id": user_id})
    assert stored["password_hash"].startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PASSWORD not in str(stored)
    assert login(project, "hash@example.com").status_code == 200


def test_signup_closed(auth_app, new_project):
    app, admin, client = auth_app()
    project = new_project(admin, client, settings={"auth": {"allow_signup": False}})
    response = signup(project, "a@example.com")
    assert response.status_code == 403 and "closed" in response.get_json()["message"]
    # The project's backend can still create users.
    created = project.server.post("/v1/users", json={"email": "a@example.com", "password": PASSWORD})
    assert created.status_code == 201
    assert login(project, "a@example.com").status_code == 200


def test_required_verification_flow_through_the_outbox(auth_app, new_project):
    app, admin, client = auth_app()
    project = new_project(admin, client, settings={"auth": {"require_verified_email": True}})
    response = signup(project, "vera@example.com")
    assert response.status_code == 201
    assert set(response.get_json()) == {"user"}, "no tokens before the address is confirmed"
    refused = login(project, "vera@example.com")
    assert refused.status_code == 403 and "Confirm your email" in refused.get_json()["message"]
    from baas.testing import wait_until

    mails = wait_until(lambda: outbox_mails(app), message="the verification mail in the outbox")
    assert mails[0]["To"] == "vera@example.com"
    token = token_in(body_of(mails[0]), "verify")
    confirmed = project.client.post("/v1/auth/verify-email/confirm", json={"token": token})
    assert confirmed.status_code == 200 and confirmed.get_json()["user"]["email_verified"] is True
    assert login(project, "vera@example.com").status_code == 200


class RecordingPlugin:
    def __init__(self):
        self.signups, self.logins = [], []

    @hookimpl
    def baas_before_user_signup(self, project_id, email, data):
        if email and email.endswith("@blocked.example"):
            raise Rejected("This domain may not sign up.")
        data["source"] = "plugin"

    @hookimpl
    def baas_after_user_signup(self, project_id, user):
        self.signups.append((project_id, user["email"], "password_hash" in user))

    @hookimpl
    def baas_after_user_login(self, project_id, user):
        self.logins.append((project_id, user["_id"]))


def test_plugin_hooks(app, project):
    plugin = RecordingPlugin()
    app.extensions["baas"].hooks.register(plugin, name="recording")
    refused = signup(project, "x@blocked.example")
    assert refused.status_code == 422 and refused.get_json()["message"] == "This domain may not sign up."
    body = signup(project, "ok@example.com", data={"a": 1}).get_json()
    assert body["user"]["data"] == {"a": 1, "source": "plugin"}
    assert plugin.signups == [(project.id, "ok@example.com", False)]
    login(project, "ok@example.com")
    assert plugin.logins == [(project.id, body["user"]["id"])]
    anonymous = project.client.post("/v1/auth/anonymous")
    assert anonymous.status_code == 201
    assert plugin.signups[-1] == (project.id, None, False)


def test_anonymous_user_and_upgrade(project):
    response = project.client.post("/v1/auth/anonymous")
    assert response.status_code == 201
    body = response.get_json()
    assert body["user"]["anonymous"] is True and body["user"]["email"] is None
    second = project.client.post("/v1/auth/anonymous")
    assert second.status_code == 201, "several anonymous users have no email and do not collide"
    anon = project.client.with_token(body["access_token"])
    assert anon.patch("/v1/auth/me", json={"data": {"score": 7}}).status_code == 200
    # Anonymous users cannot add an email through PATCH /me, only through the upgrade.
    assert anon.patch("/v1/auth/me", json={"email": "z@example.com"}).status_code == 409
    signup(project, "taken@example.com")
    taken = anon.post("/v1/auth/anonymous/upgrade", json={"email": "taken@example.com", "password": PASSWORD})
    assert taken.status_code == 409
    weak = anon.post("/v1/auth/anonymous/upgrade", json={"email": "anna@example.com", "password": "short"})
    assert weak.status_code == 400
    upgraded = anon.post("/v1/auth/anonymous/upgrade", json={"email": "Anna@example.com", "password": PASSWORD})
    assert upgraded.status_code == 200, upgraded.get_json()
    user = upgraded.get_json()["user"]
    assert user["id"] == body["user"]["id"] and user["data"] == {"score": 7}
    assert user["anonymous"] is False and user["email"] == "anna@example.com"
    # The anonymous session is over; the new tokens work, and so does logging in.
    assert anon.get("/v1/auth/me").status_code == 401
    fresh = project.client.with_token(upgraded.get_json()["access_token"])
    assert fresh.get("/v1/auth/me").get_json()["anonymous"] is False
    assert fresh.post("/v1/auth/anonymous/upgrade",
                      json={"email": "again@example.com", "password": PASSWORD}).status_code == 409
    assert login(project, "anna@example.com").get_json()["user"]["id"] == body["user"]["id"]


def test_anonymous_can_be_switched_off(auth_app, new_project):
    app, admin, client = auth_app()
    project = new_project(admin, client, settings={"auth": {"allow_anonymous": False}})
    response = project.client.post("/v1/auth/anonymous")
    assert response.status_code == 403


def test_upgrade_needs_a_signed_in_user(project):
    response = project.client.post("/v1/auth/anonymous/upgrade", json={"email": "a@example.com",
                                                                       "password": PASSWORD})
    assert response.status_code == 401


@pytest.mark.parametrize("path", ["/v1/auth/me", "/v1/auth/logout", "/v1/auth/logout-all", "/v1/auth/me/password"])
def test_signed_in_endpoints_need_a_token(project, path):
    method = "get" if path == "/v1/auth/me" else "post"
    response = getattr(project.client, method)(path, json={"old": PASSWORD, "new": PASSWORD + "!"}
                                               if path.endswith("password") else None)
    assert response.status_code == 401
    assert "Bearer" in response.get_json()["message"]
