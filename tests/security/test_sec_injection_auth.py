"""NoSQL operator injection and type confusion in the auth API's JSON bodies."""
import pytest

from security_helpers import assert_error

OPERATORS = [{"$gt": ""}, {"$ne": None}, {"$regex": ".*"}, ["a@example.com"], 1, True, None]


@pytest.mark.parametrize("value", OPERATORS)
def test_login_email_as_operator_is_rejected(project, make_user, value):
    user = make_user(project)
    response = project.client.post("/v1/auth/login", json={"email": value, "password": "correct horse battery"})
    assert_error(response, 400, 422)
    assert "access_token" not in response.get_data(as_text=True)


@pytest.mark.parametrize("value", OPERATORS)
def test_login_password_as_operator_is_rejected(project, make_user, value):
    user = make_user(project)
    response = project.client.post("/v1/auth/login", json={"email": user.email, "password": value})
    assert_error(response, 400, 422)


@pytest.mark.parametrize("value", OPERATORS)
def test_signup_email_as_operator_writes_nothing(project, value):
    response = project.client.post("/v1/auth/signup", json={"email": value, "password": "correct horse battery"})
    assert_error(response, 400, 422)
    assert project.server.get("/v1/users").get_json()["users"] == []


@pytest.mark.parametrize("value", OPERATORS)
def test_password_reset_email_as_operator(project, make_user, value):
    make_user(project)
    response = project.client.post("/v1/auth/password-reset/request", json={"email": value})
    assert_error(response, 400, 422)


@pytest.mark.parametrize("value", OPERATORS + [{"$exists": True}])
@pytest.mark.parametrize("route", ["/v1/auth/refresh"])
def test_refresh_token_as_operator(project, make_user, value, route):
    make_user(project)
    response = project.client.post(route, json={"refresh_token": value})
    assert_error(response, 400, 401, 422)


@pytest.mark.parametrize("route,field", [("/v1/auth/verify-email/confirm", "token"),
                                          ("/v1/auth/password-reset/confirm", "token")])
@pytest.mark.parametrize("value", [{"$ne": None}, {"$gt": ""}, ["x"]])
def test_mail_tokens_as_operator(project, make_user, route, field, value):
    make_user(project)
    project.client.post("/v1/auth/password-reset/request", json={"email": "nobody@example.com"})
    body = {field: value}
    if "password-reset" in route:
        body["password"] = "another long password"
    assert_error(project.client.post(route, json=body), 400, 422)


def test_unknown_fields_are_refused_not_stored(project, make_user):
    response = project.client.post("/v1/auth/signup", json={"email": "x@example.com", "password": "long enough pw",
                                                            "roles": ["admin"], "email_verified": True})
    assert_error(response, 400, 422)
    assert project.server.get("/v1/users").get_json()["users"] == []


@pytest.mark.parametrize("field,value", [("roles", ["admin"]), ("disabled", False), ("email_verified", True),
                                         ("anonymous", False), ("_id", "usr_other"), ("password_hash", "x"),
                                         ("id", "x")])
def test_me_patch_cannot_mass_assign(project, make_user, field, value):
    user = make_user(project)
    response = user.patch("/v1/auth/me", json={field: value})
    assert_error(response, 400, 422)
    me = user.get("/v1/auth/me").get_json()
    assert me["roles"] == [] and me["email_verified"] is False and me["id"] == user.user_id


@pytest.mark.parametrize("data", [{"$set": {"roles": ["admin"]}}, {"a.b": 1}, {"roles": ["admin"], "$where": "1"},
                                  {"x": {"$gt": 1}}])
def test_me_patch_data_cannot_carry_operators(project, make_user, data):
    user = make_user(project)
    assert_error(user.patch("/v1/auth/me", json={"data": data}), 400)
    me = user.get("/v1/auth/me").get_json()
    assert me["roles"] == [] and me["data"] == {}


def test_signup_data_cannot_set_roles(project):
    response = project.client.post("/v1/auth/signup", json={"email": "d@example.com", "password": "long enough pw",
                                                            "data": {"roles": ["admin"]}})
    assert response.status_code == 201
    assert response.get_json()["user"]["roles"] == []
    assert response.get_json()["user"]["data"] == {"roles": ["admin"]}


def test_login_answers_the_same_for_unknown_email_and_wrong_password(project, make_user):
    user = make_user(project)
    unknown = project.client.post("/v1/auth/login", json={"email": "nobody@example.com", "password": "whatever pw"})
    wrong = project.client.post("/v1/auth/login", json={"email": user.email, "password": "whatever pw"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.get_json()["message"] == wrong.get_json()["message"]
    assert unknown.get_json().get("errors") == wrong.get_json().get("errors")


def test_reset_request_does_not_reveal_accounts(project, make_user):
    user = make_user(project)
    known = project.client.post("/v1/auth/password-reset/request", json={"email": user.email})
    unknown = project.client.post("/v1/auth/password-reset/request", json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.get_json() == unknown.get_json()


def test_signup_case_variant_of_existing_email_conflicts(project, make_user):
    user = make_user(project)
    response = project.client.post("/v1/auth/signup", json={"email": "  " + user.email.upper(),
                                                            "password": "long enough pw"})
    assert_error(response, 409)
