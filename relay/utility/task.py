"""What the document task endpoints (extract, segment, summarize, translate) share: the key checked and bound for
the model calls, the request read, the one source of the material (a text field, an uploaded ``file`` or a
``url``) turned into a ``Document``, the model resolved, and the calls run side by side in order.

The task request itself is logged as any request (its route, key, status); it is never charged: its model calls
are, each on its own row (``relay.utility.calls``), and the admin API shows the task's row with their sum added.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from relay.dialects import ir
from relay.endpoints.forward import tally
from relay.errors import RelayError
from relay.gateway.auth import check_model
from relay.http.messages import Request, StreamResponse

from . import blocking, calls, documents
from .fetch import fetch_url
from .form import UtilityInput, read_input

if TYPE_CHECKING:
    from relay.app import Relay

T = TypeVar("T")
#: One step of a task (a model call), run by ``in_order``.
Job = Callable[[], Awaitable[T]]
#: Model calls of one task in flight at once (a long document's parts).
PARALLEL_CALLS = 4


async def begin(relay: Relay, request: Request, out: StreamResponse, main: str = "input") -> UtilityInput:
    """The key checked (a 401 before any complaint about the body) and bound for the task's model calls, and the
    request read (``input`` read as ``main``)."""
    key, _ = await relay.gateway.keys.authenticate(request)
    tally(request).key = key
    calls.bind(request, out)
    blocking.configure(relay.config.utility.threads)
    return read_input(request, main)


#: Reads an image's text (its bytes and media type): ``/v1/extract`` hands one to ``document``.
ImageReader = Callable[[bytes, str], Awaitable[str]]


async def document(
    relay: Relay, given: UtilityInput, text_field: str | None, images: ImageReader | None = None
) -> documents.Document:
    """The task's material, from exactly one of ``text_field`` (Markdown or plain text), the ``file`` or the
    ``url``: a 400 naming them when none or several are sent. An image is read by ``images`` (a 415 without)."""
    text = given.string(text_field) if text_field is not None else None
    sources = [name for name, present in ((text_field, text), ("file", given.file), ("url", given.url)) if present]
    if len(sources) != 1:
        names = " or ".join(f"'{n}'" for n in (text_field, "file", "url") if n)
        message = f"send one of {names}" + (f", not {' and '.join(sources)}" if sources else "")
        raise RelayError(400, "invalid_request", message, param=text_field or "file", code="missing_required_parameter")
    if text is not None:
        return await blocking.run_blocking(documents.convert, text.encode(), "markdown")
    if given.file is not None:
        data, kind, name = given.file.data, given.file.content_type, given.file.filename
    else:
        assert given.url is not None
        accept = documents.MEDIA_TYPES + (documents.IMAGE_MEDIA_TYPES if images is not None else ())
        fetched = await fetch_url(relay, given.url, accept=accept)
        data, kind, name = fetched.body, fetched.content_type, fetched.filename
    image = documents.image_type(data)
    if image is not None and images is not None:
        return documents.from_text(await images(data, image), "image")
    return await documents.to_text(data, kind, name)


def with_text(document: documents.Document, what: str) -> documents.Document:
    """``document`` if it has text to work on; else a 400 (an empty file, a PDF of scanned images)."""
    if not document.text.strip():
        raise RelayError(
            400, "invalid_request", f"the document has no text to {what}", param="file", code="empty_document"
        )
    return document


def model(relay: Relay, request: Request, given: UtilityInput) -> str:
    """The model the task's calls use: the request's ``model``, else ``[utility] model``, else ``[server]
    default_model`` (a 400 when there is none), checked against the key's models (a 403)."""
    name = relay.gateway.router.model(given.string("model") or relay.config.utility.model or None)
    record = tally(request)
    record.requested_model = name
    assert record.key is not None
    check_model(record.key, name)
    return name


def segment_tokens(relay: Relay, given: UtilityInput) -> int:
    """The tokens of a part when a long input is worked on in parts: ``segment_length``, else ``[utility]
    segment_tokens``."""
    return given.integer("segment_length", relay.config.utility.segment_tokens, 64, 100_000)


def required(given: UtilityInput, name: str) -> str:
    value = given.string(name)
    if value is None or not value.strip():
        raise RelayError(400, "invalid_request", f"'{name}' is required", param=name, code="missing_required_parameter")
    return value.strip()


async def in_order(jobs: Sequence[Job[T]], limit: int = PARALLEL_CALLS) -> list[T]:
    """Run ``jobs`` at most ``limit`` at once; their results in the jobs' order. The first failure cancels the
    others and is raised as it is (not in an exception group), so a failed call answers the task's status."""
    results: list[Any] = [None] * len(jobs)
    limiter = trio.CapacityLimiter(limit)

    async def run(index: int, job: Job[T]) -> None:
        async with limiter:
            results[index] = await job()

    try:
        async with trio.open_nursery() as nursery:
            for index, job in enumerate(jobs):
                nursery.start_soon(run, index, job)
    except BaseExceptionGroup as group:
        raise _first(group) from None
    return results


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to raise for a group: a RelayError if one is in it (the first), else the first exception."""
    found: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        error = pending.pop(0)
        if isinstance(error, BaseExceptionGroup):
            pending[:0] = list(error.exceptions)
        else:
            found.append(error)
    return next((e for e in found if isinstance(e, RelayError)), found[0])


def usage_json(request: Request) -> dict[str, int]:
    """The task's usage so far (its model calls'), as the answer shows it."""
    usage = tally(request).children_usage or ir.Usage()
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }
