def test_openapi_describes_the_data_api(client):
    spec = client.get("/openapi.json").get_json()
    for path in ("/v1/collections", "/v1/collections/{name}", "/v1/collections/{name}/documents",
                 "/v1/collections/{name}/documents/{doc_id}", "/v1/collections/{name}/aggregate", "/v1/batch",
                 "/admin/v1/projects/{project_id}/collections/{name}"):
        assert path in spec["paths"], path
    listing = spec["paths"]["/v1/collections/{name}/documents"]["get"]
    assert {p["name"] for p in listing["parameters"] if p["in"] == "query"} >= {"filter", "sort", "limit", "cursor",
                                                                                "count", "expand", "fields"}
    assert spec["components"]["schemas"]["Document"].get("additionalProperties", True) is not False
