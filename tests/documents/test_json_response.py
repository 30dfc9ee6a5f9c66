"""The document responses build their header list directly; values with line breaks are still refused."""
import pytest

from baas.documents.api import JsonResponse


def test_headers_are_the_given_ones_after_type_and_length():
    response = JsonResponse(b'{"a":1}', 201, [("ETag", '"0123abcd"'), ("Location", "/v1/collections/c/documents/x")])
    assert list(response.headers) == [("Content-Type", "application/json"), ("Content-Length", "7"),
                                      ("ETag", '"0123abcd"'), ("Location", "/v1/collections/c/documents/x")]
    response.headers.add("X-Request-ID", "r1")  # the after-request hooks keep working on them
    assert response.headers["x-request-id"] == "r1" and response.headers["etag"] == '"0123abcd"'


@pytest.mark.parametrize("value", ['"a\nb"', '"a\rb"'])
def test_a_header_value_with_a_line_break_is_refused(value):
    with pytest.raises(ValueError):
        JsonResponse(b"{}", 200, [("ETag", value)])
