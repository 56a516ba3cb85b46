"""Sans-IO codecs, one per API dialect: no sockets, no awaits, no clocks.

Every codec offers the same names (``relay.dialects.convert`` and the endpoints rely on them):

- ``decode_request(body) -> ir.Request``: a client request; a 400 ``RelayError`` naming the parameter
  path otherwise. Gemini's model and stream flag live in the URL: ``decode_request(body, model=, stream=)``.
- ``require_kept(req)``: on a converted path, a 400 naming the first top-level field the conversion would
  drop (anything in ``req.extra`` but the fields ignored by design and the values that ask for nothing).
- ``encode_request(req, model) -> bytes``: a request for an upstream of this dialect, for ``model``
  (``req.extra`` is sent only when it came from this dialect); content the dialect cannot express is a
  400 naming it.
- ``decode_response(body) -> ir.Response`` (a 502 for a malformed upstream body) and
  ``encode_response(resp, req) -> bytes``, where ``req`` is the client's request (its ``model`` is the name
  the client asked for, the one its answer carries).
- ``StreamDecoder()``: ``feed(chunk) -> list[ir.Event]`` and ``close() -> list[ir.Event]``; a stream that
  ends without its terminal event yields ``ir.StreamError(502, …, code="upstream_truncated")``.
- ``StreamEncoder(req)``: ``encode(event) -> bytes`` (the frames of one event, at once) and
  ``finish() -> bytes`` (anything owed at the end; an error frame when neither Finish nor StreamError came).
- ``encode_error(error) -> (status, headers, body)`` and ``encode_stream_error(error) -> bytes``: Relay's
  errors in the dialect's shape; ``decode_error(status, body) -> RelayError``: an upstream's error answer.
- ``UsageReader()``: ``feed(data)`` with each stream event's data (or a whole body) on the passthrough
  path; ``usage`` is the usage read so far, or None.

Encoders never read clocks or draw random ids: ``created`` comes from the IR (the converter fills a 0
with the time) and ids are derived from the upstream's (``common.prefixed``), so one input always gives
the same bytes.
"""
