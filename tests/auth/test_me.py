"""The signed-in user's own account: /v1/auth/me, password change, deletion."""
from auth_helpers import PASSWORD, body_of, login, outbox_mails, token_in
from baas.testing import wait_until


def test_get_and_patch_profile_data(project, make_user):
    user = make_user(project)
    me = user.get("/v1/auth/me").get_json()
    assert me["email"] == user.email and me["data"] == {}
    changed = user.patch("/v1/auth/me", json={"data": {"name": "Ada", "city": "London"}})
    assert changed.status_code == 200 and changed.get_json()["data"] == {"name": "Ada", "city": "London"}
    merged = user.patch("/v1/auth/me", json={"data": {"city": None, "lang": "en"}}).get_json()
    assert merged["data"] == {"name": "Ada", "lang": "en"}
    assert user.patch("/v1/auth/me", json={"data": {"$set": {"roles": ["admin"]}}}).status_code == 400
    assert user.patch("/v1/auth/me", json={"roles": ["admin"]}).status_code == 422
    assert user.patch("/v1/auth/me", json={"data": "text"}).status_code == 422
    assert user.get("/v1/auth/me").get_json()["roles"] == []


def test_change_email_needs_password_and_new_verification(app, project, make_user):
    user = make_user(project)
    without = user.patch("/v1/auth/me", json={"email": "new@example.com"})
    assert without.status_code == 400 and "password" in without.get_json()["errors"]
    wrong = user.patch("/v1/auth/me", json={"email": "new@example.com", "password": "not my password"})
    assert wrong.status_code == 403
    make_user(project, email="taken@example.com")
    taken = user.patch("/v1/auth/me", json={"email": "taken@example.com", "password": PASSWORD})
    assert taken.status_code == 409
    changed = user.patch("/v1/auth/me", json={"email": "New@Example.com", "password": PASSWORD})
    assert changed.status_code == 200
    assert changed.get_json()["email"] == "new@example.com" and changed.get_json()["email_verified"] is False
    mails = wait_until(lambda: [m for m in outbox_mails(app) if m["To"] == "new@example.com"],
                       message="a verification mail to the new address")
    token = token_in(body_of(mails[0]), "verify")
    assert project.client.post("/v1/auth/verify-email/confirm", json={"token": token}).status_code == 200
    assert user.get("/v1/auth/me").get_json()["email_verified"] is True
    assert login(project, "new@example.com").status_code == 200
    assert login(project, user.email).status_code == 401


def test_change_password_signs_out_other_sessions(project, make_user):
    user = make_user(project)
    other = login(project, user.email).get_json()
    assert user.post("/v1/auth/me/password", json={"old": "wrong password", "new": "brand new secret"}
                     ).status_code == 403
    weak = user.post("/v1/auth/me/password", json={"old": PASSWORD, "new": "short"})
    assert weak.status_code == 400 and "new" in weak.get_json()["errors"]
    assert user.post("/v1/auth/me/password", json={"old": PASSWORD, "new": "brand new secret"}).status_code == 204
    assert user.get("/v1/auth/me").status_code == 200, "the current session stays"
    assert project.client.with_token(other["access_token"]).get("/v1/auth/me").status_code == 401
    assert project.client.post("/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}).status_code == 401
    assert login(project, user.email).status_code == 401
    assert login(project, user.email, "brand new secret").status_code == 200


def test_delete_me_needs_the_password(project, make_user):
    user = make_user(project)
    assert user.delete("/v1/auth/me").status_code == 400
    assert user.delete("/v1/auth/me", json={"password": "wrong password"}).status_code == 403
    assert user.get("/v1/auth/me").status_code == 200
    assert user.delete("/v1/auth/me", json={"password": PASSWORD}).status_code == 204
    assert user.get("/v1/auth/me").status_code == 401
    assert login(project, user.email).status_code == 401
    assert project.server.get(f"/v1/users/{user.user_id}").status_code == 404
    # The address is free again.
    assert project.client.post("/v1/auth/signup", json={"email": user.email, "password": PASSWORD}).status_code == 201


def test_anonymous_user_deletes_itself_without_password(project):
    body = project.client.post("/v1/auth/anonymous").get_json()
    anon = project.client.with_token(body["access_token"])
    assert anon.delete("/v1/auth/me").status_code == 204
    assert anon.get("/v1/auth/me").status_code == 401
