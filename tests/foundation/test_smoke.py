def test_healthz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_project_and_keys(admin, project):
    response = project.client.get("/v1/nothing-here")
    assert response.status_code == 404
    listed = admin.get(f"/admin/v1/projects/{project.id}/keys").get_json()
    assert {k["kind"] for k in listed} == {"client", "server"}
    assert all("key" not in k and "hash" not in k for k in listed)
