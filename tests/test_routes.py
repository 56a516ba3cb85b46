"""The routing table: static and parameter routes, 404 and 405 with Allow."""

import pytest

from relay.errors import RelayError
from relay.routes import ROUTES, Route, Router


async def _endpoint(relay, request, out):
    return None


def test_every_route_is_unique():
    seen = {(r.method, r.path) for r in ROUTES}
    assert len(seen) == len(ROUTES)


def test_path_parameter_takes_slashes_and_is_decoded():
    route, params = Router(ROUTES).match("GET", "/v1/models/org%2Fname/v2")
    assert route.path == "/v1/models/{model:path}"
    assert params == {"model": "org/name/v2"}


def test_segment_parameter_stops_at_slash():
    router = Router([Route("GET", "/a/{x}/b", _endpoint)])
    assert router.match("GET", "/a/1/b")[1] == {"x": "1"}
    with pytest.raises(RelayError) as caught:
        router.match("GET", "/a/1/2/b")
    assert caught.value.status == 404


def test_unknown_path_is_404():
    with pytest.raises(RelayError) as caught:
        Router(ROUTES).match("POST", "/v1/nothing")
    assert (caught.value.status, caught.value.code) == (404, "unknown_route")


def test_wrong_method_is_405_with_allow():
    router = Router([Route("GET", "/x", _endpoint), Route("POST", "/x", _endpoint)])
    with pytest.raises(RelayError) as caught:
        router.match("DELETE", "/x")
    assert caught.value.status == 405
    assert dict(caught.value.headers)[b"allow"] == b"GET, POST"
