"""Access tokens (JWT) and sessions: forgery, expiry, other projects, refresh rotation, revocation."""
import time
import uuid

import jwt

from auth_helpers import login

SECRET = "test-secret-" + "y" * 32  # base_config's jwt.secret


def claims_for(user, project_id, **changes):
    now = int(time.time())
    claims = {"sub": user.user_id, "pid": project_id, "sid": "ses_x", "jti": str(uuid.uuid4()), "type": "access",
              "roles": ["admin"], "anon": False, "iss": "baas", "iat": now, "nbf": now, "exp": now + 600,
              "fresh": False}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def me_with(project, token):
    return project.client.with_token(token).get("/v1/auth/me")


def test_valid_token_carries_user_project_roles_and_jti(project, make_user):
    user = make_user(project, roles=["editor", "beta"])
    claims = jwt.decode(user.access_token, SECRET, algorithms=["HS256"], issuer="baas")
    assert claims["sub"] == user.user_id and claims["pid"] == project.id
    assert claims["roles"] == ["editor", "beta"] and claims["jti"] and claims["sid"].startswith("ses_")
    assert claims["exp"] - int(claims["iat"]) == 15 * 60
    assert jwt.get_unverified_header(user.access_token)["alg"] == "HS256"
    assert user.get("/v1/auth/me").status_code == 200


def test_forged_signature_is_refused(project, make_user):
    user = make_user(project)
    forged = jwt.encode(claims_for(user, project.id), "some other secret that is long enough!!", algorithm="HS256")
    response = me_with(project, forged)
    assert response.status_code == 401
    assert response.get_json()["message"] == "The access token's signature is invalid."
    # A real token with its payload edited (roles raised) fails the same way.
    header, payload, signature = user.access_token.split(".")
    other = jwt.encode(claims_for(user, project.id), SECRET, algorithm="HS256").split(".")[1]
    tampered = me_with(project, ".".join([header, other, signature]))
    assert tampered.status_code == 401 and "signature" in tampered.get_json()["message"]


def test_alg_none_is_refused(project, make_user):
    user = make_user(project)
    unsigned = jwt.encode(claims_for(user, project.id), None, algorithm="none")
    response = me_with(project, unsigned)
    assert response.status_code == 401
    assert "algorithm is not accepted" in response.get_json()["message"]
    other_alg = jwt.encode(claims_for(user, project.id), SECRET * 2, algorithm="HS512")
    assert me_with(project, other_alg).status_code == 401


def test_expired_token_is_refused(project, make_user):
    user = make_user(project)
    past = int(time.time()) - 3600
    expired = jwt.encode(claims_for(user, project.id, iat=past - 900, nbf=past - 900, exp=past), SECRET,
                         algorithm="HS256")
    response = me_with(project, expired)
    assert response.status_code == 401
    assert "expired" in response.get_json()["message"] and "/v1/auth/refresh" in response.get_json()["message"]


def test_wrong_or_missing_issuer_is_refused(project, make_user):
    user = make_user(project)
    response = me_with(project, jwt.encode(claims_for(user, project.id, iss="evil"), SECRET, algorithm="HS256"))
    assert response.status_code == 401 and "wrong issuer" in response.get_json()["message"]
    response = me_with(project, jwt.encode(claims_for(user, project.id, iss=None), SECRET, algorithm="HS256"))
    assert response.status_code == 401 and "'iss'" in response.get_json()["message"]


def test_malformed_tokens_are_refused(project, make_user):
    user = make_user(project)
    for token in ("abc", "a.b.c", "x" * 9000):
        response = me_with(project, token)
        assert response.status_code == 401 and "malformed" in response.get_json()["message"], token
    no_session = jwt.encode(claims_for(user, project.id, sid=None), SECRET, algorithm="HS256")
    assert me_with(project, no_session).status_code == 401
    refresh_type = jwt.encode(claims_for(user, project.id, type="refresh"), SECRET, algorithm="HS256")
    assert me_with(project, refresh_type).get_json()["message"] == "This is not an access token."
    bad_roles = jwt.encode(claims_for(user, project.id, roles="admin"), SECRET, algorithm="HS256")
    assert me_with(project, bad_roles).status_code == 401
    basic = project.client.get("/v1/auth/me", headers={"Authorization": "Basic abc"})
    assert basic.status_code == 401


def test_token_of_another_project_is_refused(app, admin, client, project, make_user):
    from baas.testing import create_project

    other = create_project(admin, client)
    user = make_user(project)
    response = other.client.with_token(user.access_token).get("/v1/auth/me")
    assert response.status_code == 401
    assert response.get_json()["message"] == "This access token belongs to another project."
    # Its refresh token means nothing there either.
    refreshed = other.client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert refreshed.status_code == 401
    assert user.get("/v1/auth/me").status_code == 200


def test_refresh_rotates_and_reuse_revokes_the_family(project, make_user):
    user = make_user(project)
    first = project.client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert first.status_code == 200, first.get_json()
    pair = first.get_json()
    assert pair["refresh_token"] != user.refresh_token and pair["user"]["id"] == user.user_id
    assert project.client.with_token(pair["access_token"]).get("/v1/auth/me").status_code == 200
    second = project.client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert second.status_code == 200
    latest = second.get_json()
    # The first refresh token is presented again: theft is assumed and the whole session ends.
    reused = project.client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert reused.status_code == 401
    assert "already used" in reused.get_json()["message"] and "revoked" in reused.get_json()["message"]
    assert project.client.post("/v1/auth/refresh", json={"refresh_token": latest["refresh_token"]}).status_code == 401
    for token in (user.access_token, pair["access_token"], latest["access_token"]):
        response = project.client.with_token(token).get("/v1/auth/me")
        assert response.status_code == 401 and "revoked" in response.get_json()["message"]
    # Other sessions of the same user are untouched.
    assert login(project, user.email).status_code == 200


def test_refresh_refuses_unknown_and_expired_tokens(app, project, make_user):
    user = make_user(project)
    for token in ("baas_rt_" + "a" * 43, "nonsense"):
        response = project.client.post("/v1/auth/refresh", json={"refresh_token": token})
        assert response.status_code == 401 and response.get_json()["message"] == "Invalid refresh token."
    assert project.client.post("/v1/auth/refresh", json={}).status_code == 422
    from datetime import datetime, timedelta, timezone
    from baas.util import sha256_hex

    tokens = app.extensions["baas"].mongo.project_db(project.id)["_refresh_tokens"]
    stored = tokens.find_one({"_id": sha256_hex(user.refresh_token)})
    stored["expires_at"] = datetime.now(timezone.utc) - timedelta(seconds=1)
    tokens.replace_one({"_id": stored["_id"]}, stored)
    response = project.client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert response.status_code == 401
    # Depending on whether the TTL monitor already removed it, the token reads as expired or unknown.
    assert response.get_json()["message"] in ("The refresh token has expired; log in again.",
                                              "Invalid refresh token.")


def test_logout_revokes_access_and_refresh_token(project, make_user):
    user = make_user(project)
    other_session = login(project, user.email).get_json()
    assert user.post("/v1/auth/logout").status_code == 204
    response = user.get("/v1/auth/me")
    assert response.status_code == 401 and "revoked" in response.get_json()["message"]
    assert project.client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token}).status_code == 401
    assert project.client.with_token(other_session["access_token"]).get("/v1/auth/me").status_code == 200


def test_logout_all_revokes_every_session(project, make_user):
    user = make_user(project)
    other_session = login(project, user.email).get_json()
    assert user.post("/v1/auth/logout-all").status_code == 204
    assert user.get("/v1/auth/me").status_code == 401
    assert project.client.with_token(other_session["access_token"]).get("/v1/auth/me").status_code == 401
    assert project.client.post("/v1/auth/refresh",
                               json={"refresh_token": other_session["refresh_token"]}).status_code == 401
    assert login(project, user.email).status_code == 200


def test_disabled_user_is_refused_everywhere(project, make_user):
    user = make_user(project)
    assert project.server.patch(f"/v1/users/{user.user_id}", json={"disabled": True}).status_code == 200
    response = user.get("/v1/auth/me")
    assert response.status_code == 401 and response.get_json()["message"] == "This user account is disabled."
    refused = login(project, user.email)
    assert refused.status_code == 403 and "disabled" in refused.get_json()["message"]
    assert project.client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token}).status_code == 401
    assert project.server.patch(f"/v1/users/{user.user_id}", json={"disabled": False}).status_code == 200
    again = login(project, user.email)
    assert again.status_code == 200
    assert project.client.with_token(again.get_json()["access_token"]).get("/v1/auth/me").status_code == 200
    assert user.get("/v1/auth/me").status_code == 401, "tokens from before the disable stay dead"


def test_role_change_retires_older_tokens(project, make_user):
    user = make_user(project, roles=["admin"])
    assert project.server.patch(f"/v1/users/{user.user_id}", json={"roles": ["reader"]}).status_code == 200
    response = user.get("/v1/auth/me")
    assert response.status_code == 401 and "refresh" in response.get_json()["message"]
    refreshed = project.client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token}).get_json()
    claims = jwt.decode(refreshed["access_token"], SECRET, algorithms=["HS256"], issuer="baas")
    assert claims["roles"] == ["reader"]
    assert project.client.with_token(refreshed["access_token"]).get("/v1/auth/me").status_code == 200


def test_deleted_user_tokens_stop_working(project, make_user):
    user = make_user(project)
    assert project.server.delete(f"/v1/users/{user.user_id}").status_code == 204
    response = user.get("/v1/auth/me")
    assert response.status_code == 401 and response.get_json()["message"] == "This user no longer exists."
    assert login(project, user.email).status_code == 401


def test_revocation_is_checked_against_mongodb_not_only_this_process(make_app, project, make_user):
    """A second app (another process's view of the same database) sees a logout within the cache bound."""
    from baas.testing import wait_until

    user = make_user(project)
    second_process = make_app({"auth.revocation_cache_seconds": 1}).test_client()
    headers = {"X-API-Key": project.client_key, "Authorization": f"Bearer {user.access_token}"}
    assert second_process.get("/v1/auth/me", headers=headers).status_code == 200
    assert user.post("/v1/auth/logout").status_code == 204
    wait_until(lambda: second_process.get("/v1/auth/me", headers=headers).status_code == 401, timeout=5,
               message="the other app to refuse the revoked token")
