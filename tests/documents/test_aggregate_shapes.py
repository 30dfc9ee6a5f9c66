"""Aggregates answer the same values on every backend: dates as dates, arrays and objects as themselves."""


def _fill(project, *docs):
    put = project.server.put("/v1/collections/shapes", json={"schema": {"type": "object", "properties": {
        "day": {"type": "string", "format": "date-time"}}}})
    assert put.status_code in (200, 201), put.get_json()
    for doc in docs:
        response = project.server.post("/v1/collections/shapes/documents", json=doc)
        assert response.status_code == 201, response.get_json()


def _aggregate(project, **query):
    response = project.server.get("/v1/collections/shapes/aggregate", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["groups"]


def test_dates_group_and_compare_as_dates(project):
    _fill(project, {"day": "2024-05-01T10:30:00.123Z", "n": 1}, {"day": "2024-05-01T10:30:00.123Z", "n": 2},
          {"day": "2024-05-02T00:00:00Z", "n": 3})
    assert _aggregate(project, group_by="day", metrics="count,sum:n") == [
        {"key": "2024-05-01T10:30:00.123Z", "count": 2, "sum:n": 3},
        {"key": "2024-05-02T00:00:00.000Z", "count": 1, "sum:n": 3}]
    assert _aggregate(project, metrics="min:day,max:day,min:_created") == [
        {"key": None, "min:day": "2024-05-01T10:30:00.123Z", "max:day": "2024-05-02T00:00:00.000Z",
         "min:_created": _aggregate(project, metrics="min:_created")[0]["min:_created"]}]
    created = _aggregate(project, metrics="min:_created,max:_updated")[0]
    assert created["min:_created"].endswith("Z") and created["max:_updated"].endswith("Z")


def test_arrays_and_objects_group_as_themselves(project):
    _fill(project, {"tags": ["a", "b"], "where": {"city": "Oslo", "zip": 1}},
          {"tags": ["a", "b"], "where": {"city": "Oslo", "zip": 1}},
          {"tags": ["c", {"x": 1}], "where": {"city": "Rome", "zip": 2}},
          # Strings that read like JSON stay strings.
          {"tags": "[\"z\"]", "where": "{\"city\": \"nowhere\"}"})
    by_tags = {str(group["key"]): group["count"] for group in _aggregate(project, group_by="tags")}
    assert by_tags == {"['a', 'b']": 2, "['c', {'x': 1}]": 1, '["z"]': 1}
    keys = [group["key"] for group in _aggregate(project, group_by="tags")]
    assert ["a", "b"] in keys and ["c", {"x": 1}] in keys and '["z"]' in keys
    by_place = [group["key"] for group in _aggregate(project, group_by="where")]
    assert {"city": "Oslo", "zip": 1} in by_place and {"city": "Rome", "zip": 2} in by_place
    assert '{"city": "nowhere"}' in by_place


def test_a_filter_and_rules_still_bound_restored_values(project):
    _fill(project, {"tags": ["a"], "kind": "x"}, {"tags": "[\"a\"]", "kind": "y"})
    assert _aggregate(project, group_by="tags", filter='{"kind": "x"}') == [{"key": ["a"], "count": 1}]
    assert _aggregate(project, group_by="tags", filter='{"kind": "y"}') == [{"key": "[\"a\"]", "count": 1}]


def test_the_schema_decides_without_asking_the_database(project):
    put = project.server.put("/v1/collections/typed", json={"schema": {"type": "object", "properties": {
        "tags": {"type": "array"}, "label": {"type": "string"}, "day": {"type": "string", "format": "date"}}}})
    assert put.status_code in (200, 201), put.get_json()
    for doc in ({"tags": ["a"], "label": "[\"a\"]", "day": "2024-05-01", "note": '{"$date":"2024-05-01T00:00:00"}'},
                {"tags": ["a"], "label": "{\"k\":1}", "day": "2024-05-01", "note": "x"}):
        assert project.server.post("/v1/collections/typed/documents", json=doc).status_code == 201

    def groups(**query):
        response = project.server.get("/v1/collections/typed/aggregate", query_string=query)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["groups"]

    assert groups(group_by="tags") == [{"key": ["a"], "count": 2}]
    assert sorted(group["key"] for group in groups(group_by="label")) == ["[\"a\"]", "{\"k\":1}"]
    # No date can be stored outside a date field, so this text is a string wherever it came from.
    assert '{"$date":"2024-05-01T00:00:00"}' in [group["key"] for group in groups(group_by="note")]
    assert groups(group_by="day") == [{"key": "2024-05-01", "count": 2}]   # a date-only field, as documents show it
    assert groups(metrics="min:day") == [{"key": None, "min:day": "2024-05-01"}]
