"""The benchmark's neutral mock upstream: four dialects, five stream shapes, prebuilt frames, measured cost.

``neutral_mock(workdir)`` runs ``node bench/neutral/mock.mjs`` (why node and how it stays cheap: its header), or
with ``mock="c"`` the same mock in C (cmock.c, built by ``cbuild`` from its frame table, table.mjs), and yields a
``NeutralMock`` (address, pid, kind, ``cpu_seconds()``, ``stats()``). ``wire`` builds the requests of each
dialect and tells a stream's first token; ``cost`` measures the mock's CPU per request and per frame against a
target's on the same load (``python -m bench.neutral.cost``).
"""

from bench.neutral.server import NeutralMock, neutral_mock
from bench.neutral.wire import DIALECTS, SHAPES, model_for

__all__ = ["DIALECTS", "SHAPES", "NeutralMock", "model_for", "neutral_mock"]
