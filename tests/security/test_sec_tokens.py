"""Forged, tampered, expired, foreign and revoked access tokens; refresh-token reuse."""
import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest

from baas.testing import create_project
from security_helpers import assert_error

SECRET = "test-secret-" + "y" * 32  # base_config's jwt.secret


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def sign_hs256(claims: dict, secret: str, alg: str = "HS256") -> str:
    """HMAC-signed JWT by hand, so an empty secret can be used (PyJWT refuses to)."""
    signing_input = b64({"alg": alg, "typ": "JWT"}) + "." + b64(claims)
    hash_function = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    digest = hmac.new(secret.encode(), signing_input.encode(), hash_function).digest()
    return signing_input + "." + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_alg_none_token_is_refused(project, make_user):
    user = make_user(project)
    claims = claims_of(user.access_token)
    forged = b64({"alg": "none", "typ": "JWT"}) + "." + b64(claims) + "."
    assert_error(project.client.with_token(forged).get("/v1/auth/me"), 401)


@pytest.mark.parametrize("secret", ["", "wrong-secret", SECRET + "x"])
def test_token_signed_with_other_secret_is_refused(project, make_user, secret):
    user = make_user(project)
    forged = sign_hs256({**claims_of(user.access_token), "roles": ["admin"]}, secret)
    assert_error(project.client.with_token(forged).get("/v1/auth/me"), 401)


def test_tampered_payload_is_refused(project, make_user):
    user = make_user(project)
    header, payload, signature = user.access_token.split(".")
    claims = claims_of(user.access_token)
    claims["roles"] = ["admin"]
    forged = f"{header}.{b64(claims)}.{signature}"
    assert_error(project.client.with_token(forged).get("/v1/auth/me"), 401)


def test_other_hmac_algorithm_with_right_secret_is_refused(project, make_user):
    user = make_user(project)
    forged = sign_hs256(claims_of(user.access_token), SECRET, alg="HS512")
    assert_error(project.client.with_token(forged).get("/v1/auth/me"), 401)


@pytest.mark.parametrize("change", [{"exp": 1}, {"iss": "someone-else"}, {"type": "refresh"}, {"sub": None},
                                    {"pid": None}, {"roles": "admin"}, {"nbf": 9_999_999_999}])
def test_correctly_signed_but_bad_claims_are_refused(project, make_user, change):
    user = make_user(project)
    claims = {**claims_of(user.access_token), **change}
    claims = {k: v for k, v in claims.items() if v is not None}
    forged = sign_hs256(claims, SECRET)
    assert_error(project.client.with_token(forged).get("/v1/auth/me"), 401)


def test_token_for_a_user_that_does_not_exist_is_refused(project, make_user):
    user = make_user(project)
    claims = {**claims_of(user.access_token), "sub": "usr_ghost"}
    forged = sign_hs256(claims, SECRET)
    assert_error(project.client.with_token(forged).get("/v1/auth/me"), 401, 404)


@pytest.mark.parametrize("token", ["x", "a.b.c", "." * 3, "é.é.é", "a" * 9000, "Bearer x"])
def test_garbage_tokens_are_401(project, token):
    assert_error(project.client.with_headers(Authorization=f"Bearer {token}").get("/v1/auth/me"), 401)


def test_token_of_project_a_with_key_of_project_b(admin, client, project, make_user):
    user = make_user(project)
    other = create_project(admin, client)
    assert_error(other.client.with_token(user.access_token).get("/v1/auth/me"), 401)
    assert_error(other.server.with_token(user.access_token).get("/v1/auth/me"), 401)


def test_forged_token_naming_project_b_signed_correctly_but_user_of_a(admin, client, project, make_user):
    """Even with the signing secret, a user id of A presented to B finds nothing in B."""
    user = make_user(project)
    other = create_project(admin, client)
    claims = {**claims_of(user.access_token), "pid": other.id}
    forged = sign_hs256(claims, SECRET)
    response = other.client.with_token(forged).get("/v1/auth/me")
    assert_error(response, 401, 404)


def test_disabled_user_token_stops_working(project, make_user):
    user = make_user(project)
    assert user.get("/v1/auth/me").status_code == 200
    assert project.server.patch(f"/v1/users/{user.user_id}", json={"disabled": True}).status_code == 200
    assert_error(user.get("/v1/auth/me"), 401)
    assert_error(project.client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token}), 401)
    assert_error(project.client.post("/v1/auth/login", json={"email": user.email,
                                                             "password": "correct horse battery"}), 401, 403)


def test_deleted_user_token_stops_working(project, make_user):
    user = make_user(project)
    assert project.server.delete(f"/v1/users/{user.user_id}").status_code == 204
    assert_error(user.get("/v1/auth/me"), 401)
    assert_error(project.client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token}), 401)


def test_refresh_token_reuse_revokes_the_family(project, make_user):
    user = make_user(project)
    first = project.client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert first.status_code == 200
    pair = first.get_json()
    assert_error(project.client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token}), 401)
    # the thief's replay killed the legitimate successor too
    assert_error(project.client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}), 401)
    assert_error(project.client.with_token(pair["access_token"]).get("/v1/auth/me"), 401)


def test_refresh_token_of_project_a_on_project_b(admin, client, project, make_user):
    user = make_user(project)
    other = create_project(admin, client)
    assert_error(other.client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token}), 401)
    # and it was not consumed by the failed attempt
    assert project.client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token}).status_code == 200


def test_logged_out_access_token_refused(project, make_user):
    user = make_user(project)
    assert user.post("/v1/auth/logout").status_code == 204
    assert_error(user.get("/v1/auth/me"), 401)


def test_access_token_is_not_a_refresh_token(project, make_user):
    user = make_user(project)
    assert_error(project.client.post("/v1/auth/refresh", json={"refresh_token": user.access_token[:200]}), 401)


def test_user_token_is_not_an_admin_token(project, make_user, client):
    user = make_user(project)
    response = client.get("/admin/v1/projects", headers={"Authorization": f"Bearer {user.access_token}"})
    assert_error(response, 401, 403)


def test_control_a_token_resigned_unchanged_with_the_real_secret_works(project, make_user):
    """Proves the forgery tests above fail for the reason they name, not because the signer is wrong."""
    user = make_user(project)
    resigned = sign_hs256(claims_of(user.access_token), SECRET)
    assert project.client.with_token(resigned).get("/v1/auth/me").status_code == 200
