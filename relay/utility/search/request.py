"""A ``/v1/search`` request, read and checked (``relay.utility.form``: a JSON object, a multipart or a URL-encoded
form, ``input`` the alias of ``query``).

``query`` is required (at most ``MAX_QUERY`` characters); ``model`` names the search provider's model (else
``[utility] search_model``); ``max_results`` (1 to ``MAX_RESULTS``, default ``DEFAULT_RESULTS``); ``rerank``: a
rerank model that orders the results again (``relay.utility.search.rerank``).
"""

from __future__ import annotations

import attrs

from relay.errors import RelayError
from relay.http.messages import Request

from ..form import invalid, read_input

MAX_RESULTS = 20
DEFAULT_RESULTS = 5
#: Characters of a query, at most (the providers take a few hundred).
MAX_QUERY = 2000


@attrs.frozen
class SearchAsk:
    query: str
    model: str
    max_results: int
    rerank: str | None


def read_search(request: Request, default_model: str) -> SearchAsk:
    given = read_input(request, "query")
    query = given.string("query")
    if query is None or not query.strip():
        raise RelayError(
            400,
            "invalid_request",
            "'query' (or its alias 'input') is required: the words to search for",
            param="query",
            code="missing_required_parameter",
        )
    if len(query) > MAX_QUERY:
        raise invalid("query", f"'query' is longer than {MAX_QUERY} characters")
    model = given.string("model") or default_model
    if not model:
        raise RelayError(
            400,
            "invalid_request",
            "'model' is required: name the search provider's model, or set [utility] search_model in relay.toml",
            param="model",
            code="missing_required_parameter",
        )
    return SearchAsk(
        query=query.strip(),
        model=model,
        max_results=given.integer("max_results", DEFAULT_RESULTS, 1, MAX_RESULTS),
        rerank=given.string("rerank"),
    )
