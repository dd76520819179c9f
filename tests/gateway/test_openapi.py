"""Inputs that were server errors (found by fuzzing the storefront API) and are now answered as documented."""

from __future__ import annotations

import pytest

PROBLEM = "application/problem+json"


# --------------------------------------------------------------------------- what fuzzing found (were 500s)

_NUL_CURSOR = "WyIyMDIwLTAxLTAxVDAwOjAwOjAwIiwgImFcdTAwMDBiIl0"  # ["2020-01-01T00:00:00", "a\\u0000b"], base64


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/orders/ord_%00", 400, "bad_request"),  # NUL in a path: PostgreSQL text cannot hold it
        ("/api/v1/stamps/stp_%00/document", 400, "bad_request"),
        ("/api/v1/batches/%00", 400, "bad_request"),
        ("/api/v1/stamps?status=queued%00", 400, "bad_request"),  # ... or in a query
        ("/api/v1/customers/%C2%B2", 404, "not_found"),  # "²" is a digit to str.isdigit, not to int()
        ("/api/v1/stamps?customer=%C2%B2", 404, "customer_not_found"),
        ("/api/v1/stamps?from=2020-13-45T00:00:00", 400, "invalid_cursor"),  # well-formed, no such month
        ("/api/v1/stamps?to=0505-05-08T17:23:02%2B18:11", 200, None),  # an offset PostgreSQL refuses: made UTC
        ("/api/v1/stamps?from=0001-01-01T00:00:00%2B05:00", 400, "invalid_cursor"),  # before year 1 in UTC
        (f"/api/v1/stamps?cursor={_NUL_CURSOR}", 400, "invalid_cursor"),
    ],
)
def test_inputs_that_were_server_errors_are_answered_as_documented(path, status, code, client_for):
    response = client_for("alpha").get(path)

    assert response.status_code == status
    if code:
        assert response["Content-Type"] == PROBLEM
        assert response.json()["code"] == code


@pytest.mark.django_db
@pytest.mark.parametrize("box", [("nan", "0", "100", "100"), ("0", "0", "inf", "100"), ("1e308", "0", "1e309", "9")])
def test_a_stamp_box_that_is_not_a_finite_number_is_a_validation_error(box, client_for):
    from io import BytesIO

    from tests.fixtures.pdfs.factory import text_pdf

    document = BytesIO(text_pdf())
    document.name = "surat.pdf"
    fields = dict(zip(("llx", "lly", "urx", "ury"), box, strict=True))

    response = client_for("alpha").post("/api/v1/stamps", {"customer": 1, "document": document, **fields})

    assert response.status_code == 400
    assert response.json()["code"] == "validation_failed"
    assert set(response.json()["errors"]) & {"llx", "urx"}
