"""Multipart forms as the upload APIs read and write them (relay.endpoints.multipart_form, on python-multipart):
what a client sends is read back field by field and file by file, a form written again reads the same, and a
malformed form is a 400 naming what is wrong."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.endpoints import multipart_form
from relay.endpoints.multipart_form import Part
from relay.errors import RelayError

#: What the OpenAI SDK (httpx) sends for images.edit with two images and a mask.
SDK_BODY = (
    b"--b0undary\r\n"
    b'Content-Disposition: form-data; name="prompt"\r\n\r\n'
    b"a cat\r\n"
    b"--b0undary\r\n"
    b'Content-Disposition: form-data; name="model"\r\n\r\n'
    b"gpt-image-1\r\n"
    b"--b0undary\r\n"
    b'Content-Disposition: form-data; name="image[]"; filename="one.png"\r\n'
    b"Content-Type: image/png\r\n\r\n"
    b"\x89PNG\r\n--not-a-boundary\r\n\x00\xff\r\n"
    b"--b0undary\r\n"
    b'Content-Disposition: form-data; name="image[]"; filename="two.png"\r\n'
    b"Content-Type: image/png\r\n\r\n"
    b"\x89PNG two\r\n"
    b"--b0undary\r\n"
    b'Content-Disposition: form-data; name="mask"; filename="mask.png"\r\n\r\n'
    b"mask bytes\r\n"
    b"--b0undary--\r\n"
)
SDK_TYPE = "multipart/form-data; boundary=b0undary"


def test_fields_and_files_as_the_sdk_sends_them() -> None:
    form = multipart_form.parse(SDK_BODY, SDK_TYPE)
    assert form.field("prompt") == "a cat" and form.field("model") == "gpt-image-1"
    assert form.field("absent") is None
    images = form.files("image")
    assert [(p.filename, p.content_type, p.data) for p in images] == [
        ("one.png", "image/png", b"\x89PNG\r\n--not-a-boundary\r\n\x00\xff"),
        ("two.png", "image/png", b"\x89PNG two"),
    ]
    (mask,) = form.files("mask")
    assert mask.data == b"mask bytes" and mask.content_type is None


def test_a_form_written_again_with_one_field_changed_reads_the_same_but_that_field() -> None:
    form = multipart_form.parse(SDK_BODY, SDK_TYPE).replaced("model", "upstream-name")
    body, content_type = multipart_form.encode(form.parts)
    again = multipart_form.parse(body, content_type)
    assert again.field("model") == "upstream-name" and again.field("prompt") == "a cat"
    assert [(p.name, p.filename, p.data) for p in again.files("image")] == [
        (p.name, p.filename, p.data) for p in form.files("image")
    ]
    assert again.files("mask")[0].content_type == "application/octet-stream"  # written with a type


#: Names as a form can carry them: a quote, a backslash, CR and LF are written escaped (``%22``, …) and read so.
names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters='"\\\r\n'), min_size=1, max_size=12)


@given(
    st.lists(
        st.tuples(names, st.binary(max_size=300), st.one_of(st.none(), names)),
        min_size=1,
        max_size=6,
    )
)
def test_any_form_round_trips(parts: list[tuple[str, bytes, str | None]]) -> None:
    written = [
        Part(name, data if filename is not None else data.hex().encode(), filename) for name, data, filename in parts
    ]
    body, content_type = multipart_form.encode(written)
    read = multipart_form.parse(body, content_type)
    assert [(p.name, p.data, p.filename) for p in read.parts] == [(p.name, p.data, p.filename) for p in written]


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        (SDK_BODY, "application/json", "multipart/form-data"),
        (SDK_BODY, "multipart/form-data", "multipart/form-data"),  # no boundary
        (b"garbage", SDK_TYPE, "malformed multipart form"),
        (b"--b0undary--\r\n", SDK_TYPE, "no parts"),
        (b"--b0undary\r\nContent-Type: text/plain\r\n\r\nx\r\n--b0undary--\r\n", SDK_TYPE, "Content-Disposition"),
    ],
)
def test_malformed_forms_are_400s(body: bytes, content_type: str, words: str) -> None:
    with pytest.raises(RelayError) as caught:
        multipart_form.parse(body, content_type)
    assert caught.value.status == 400 and words in caught.value.message


def test_too_many_parts_and_too_large_a_field_are_refused() -> None:
    many, kind = multipart_form.encode([Part(f"f{i}", b"x") for i in range(multipart_form.MAX_PARTS + 1)])
    with pytest.raises(RelayError, match="parts"):
        multipart_form.parse(many, kind)
    large, kind = multipart_form.encode([Part("prompt", b"x" * (multipart_form.MAX_FIELD_BYTES + 1))])
    with pytest.raises(RelayError, match="prompt"):
        multipart_form.parse(large, kind)
    # a file that large is fine: files are bounded by the body limit only
    big_file, kind = multipart_form.encode([Part("file", b"x" * (multipart_form.MAX_FIELD_BYTES + 1), "a.bin")])
    assert len(multipart_form.parse(big_file, kind).files("file")[0].data) == multipart_form.MAX_FIELD_BYTES + 1


def test_names_with_quotes_and_line_breaks_are_written_escaped() -> None:
    body, kind = multipart_form.encode([Part('a"b\r\nc', b"1")])
    assert b'name="a%22b%0D%0Ac"' in body
    assert multipart_form.parse(body, kind).field("a%22b%0D%0Ac") == "1"
