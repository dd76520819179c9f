"""The stamp request's validation fast path gives exactly the serializer's answers, or steps aside."""

from __future__ import annotations

import datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import QueryDict
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError

from faces.storefront.stamp_input import STAMP_INPUT, _plain_stamp_input, validate_stamp_input

PDF = SimpleUploadedFile("a.pdf", b"%PDF-1.7\n", "application/pdf")


def form(**fields) -> QueryDict:
    """A QueryDict as the upload parser builds it: each value a list."""
    data = QueryDict(mutable=True)
    for name, value in fields.items():
        data.setlist(name, value if isinstance(value, list) else [value])
    data._mutable = False
    return data


def serializer_answer(data):
    try:
        return STAMP_INPUT.run_validation(data)
    except ValidationError as exc:
        return exc


def same(fast: dict, slow: dict) -> bool:
    """Equal values of equal types (1 == 1.0 in Python, but an int where DRF gives a float is a change)."""
    return fast.keys() == slow.keys() and all(
        type(fast[k]) is type(slow[k]) and (fast[k] is slow[k] or fast[k] == slow[k]) for k in slow
    )


PLAIN = {"customer": "12", "llx": "40", "lly": "40.5", "urx": "140", "ury": "140.25", "document": PDF}


def test_a_plain_request_is_answered_by_the_fast_path_exactly_as_drf_answers_it():
    data = form(**PLAIN)
    fast = _plain_stamp_input(data)
    assert fast is not None
    assert same(fast, serializer_answer(data))
    assert fast == {
        "customer": 12, "page": 1, "llx": 40.0, "lly": 40.5, "urx": 140.0, "ury": 140.25, "profile": "default",
        "document_type": "", "document_number": "", "document_date": None, "reason": "", "location": "",
        "password": "", "document": PDF,
    }  # fmt: skip


def test_every_optional_field_filled_in_plainly_stays_on_the_fast_path():
    data = form(
        **PLAIN, page="3", profile="strict-1", document_type="surat_perjanjian", document_number="SP/2026/001",
        document_date="2026-11-25", reason="Kontrak kerja", location="Jakarta", password=" pass word ",
    )  # fmt: skip
    fast = _plain_stamp_input(data)
    assert fast is not None and fast["document_date"] == datetime.date(2026, 11, 25)
    assert fast["password"] == " pass word "  # never trimmed
    assert same(fast, serializer_answer(data))


@pytest.mark.parametrize(
    "changes",
    [
        {"customer": " 12"},  # DRF accepts these spellings; the serializer gives the answer
        {"customer": "12.0"},
        {"customer": "\u0661\u0662"},  # Arabic-Indic digits: int() takes them
        {"llx": "4e1"},
        {"page": ""},
        {"profile": ""},
        {"reason": " Kontrak "},
        {"document_date": ""},
        {"customer": ["12", "13"]},  # repeated: DRF takes the last
    ],
)
def test_lenient_spellings_go_to_drf_which_still_accepts_them(changes):
    data = form(**(PLAIN | changes))
    assert _plain_stamp_input(data) is None or changes == {"document_date": ""}
    answer = validate_stamp_input(data)
    assert same(answer, STAMP_INPUT.run_validation(data))


@pytest.mark.parametrize(
    "changes",
    [
        {"customer": "0"},
        {"customer": "-3"},
        {"customer": "9" * 19},
        {"llx": "nan"},
        {"llx": "inf"},
        {"page": "0"},
        {"profile": "no spaces"},
        {"profile": "x" * 41},
        {"reason": "r" * 201},
        {"reason": "   "},
        {"location": "a\x00b"},
        {"document_date": "2026-02-30"},
        {"document_date": "25/11/2026"},
        {"document": SimpleUploadedFile("empty.pdf", b"", "application/pdf")},
        {"document": "not a file"},
    ],
)
def test_refusals_are_drfs_own(changes):
    data = form(**(PLAIN | changes))
    assert _plain_stamp_input(data) is None
    with pytest.raises(ValidationError) as caught:
        validate_stamp_input(data)
    assert caught.value.detail == serializer_answer(data).detail


def test_missing_required_fields_are_drfs_refusal():
    for name in ("customer", "llx", "document"):
        data = form(**{k: v for k, v in PLAIN.items() if k != name})
        assert _plain_stamp_input(data) is None
        assert isinstance(serializer_answer(data), ValidationError)


def test_input_that_is_not_a_form_goes_to_drf():
    assert _plain_stamp_input({"customer": "1"}) is None


# Values that sit on both sides of every fast-path rule.
_text = st.one_of(
    st.sampled_from(["", " ", "a", " a", "a ", "a\x00", "\u2028", "\u00a0x", "x\u00a0", "ok-slug", "ok_slug", "x" * 40,
                     "x" * 41, "x" * 101, "x" * 129, "x" * 201, "\ud800", "Jl. Merdeka 1\nJakarta"]),
    st.text(max_size=12),
)  # fmt: skip
_number = st.one_of(
    st.sampled_from(["0", "1", "01", "-1", "1.0", "1.", ".5", "-0", "1e3", "nan", "inf", "-inf", " 7", "7 ", "1_0",
                     "9" * 18, "9" * 19, "9" * 16 + ".5", "\u0663", "+4", "4.0000000000000001"]),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)  # fmt: skip
_date = st.one_of(
    st.sampled_from(["", "2026-11-25", "2026-02-30", "2026-1-5", "20261125", "2026-W48-3", " 2026-11-25",
                     "0000-01-01", "9999-12-31"]),
    st.dates().map(datetime.date.isoformat),
)  # fmt: skip
_file = st.sampled_from(
    [PDF, SimpleUploadedFile("e.pdf", b""), SimpleUploadedFile("b.pdf", b"%PDF")]
)
_STRATEGY = {
    "customer": _number, "page": _number, "llx": _number, "lly": _number, "urx": _number, "ury": _number,
    "profile": _text, "document_type": _text, "document_number": _text, "document_date": _date, "reason": _text,
    "location": _text, "password": _text, "document": st.one_of(_file, _text),
}  # fmt: skip


_PLAIN_OPTIONAL = {
    "page": st.integers(min_value=1, max_value=10**18 - 1).map(str),
    "profile": st.from_regex(r"[-a-zA-Z0-9_]{1,40}", fullmatch=True),
    "document_type": st.from_regex(r"[-a-zA-Z0-9_]{1,40}", fullmatch=True),
    "document_number": st.text(min_size=1, max_size=100).filter(lambda t: t == t.strip()),
    "document_date": st.dates().map(datetime.date.isoformat),
    "reason": st.text(max_size=200).filter(lambda t: t == t.strip()),
    "location": st.text(max_size=100).filter(lambda t: t == t.strip()),
    "password": st.text(max_size=128),
}


@st.composite
def stamp_forms(draw):
    """A plain form (optional fields absent or plainly filled), then up to two fields changed at random:
    a value from either side of the fast path's rules, gone, or sent twice."""
    fields = dict(PLAIN)
    fields["customer"] = str(draw(st.integers(min_value=1, max_value=10**18 - 1)))
    for name in ("llx", "lly", "urx", "ury"):
        fields[name] = draw(st.sampled_from(["0", "-12.5", "595.276", "841.89", "100000"]))
    for name, values in _PLAIN_OPTIONAL.items():
        if draw(st.booleans()):
            fields[name] = draw(values)
    for name in draw(st.lists(st.sampled_from(sorted(_STRATEGY)), max_size=2, unique=True)):
        how = draw(st.sampled_from(["other", "missing", "twice"]))
        if how == "missing":
            fields.pop(name, None)
        elif how == "twice":
            fields[name] = [draw(_STRATEGY[name]), draw(_STRATEGY[name])]
        else:
            fields[name] = draw(_STRATEGY[name])
    return form(**fields)


@settings(max_examples=600, deadline=None)
@given(stamp_forms())
def test_the_fast_path_never_disagrees_with_drf(data):
    fast = _plain_stamp_input(data)
    slow = serializer_answer(data)
    if fast is not None:
        assert not isinstance(slow, ValidationError), f"fast path accepted what DRF refuses: {slow.detail}"
        assert same(fast, slow)
