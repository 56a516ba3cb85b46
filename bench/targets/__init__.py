"""The benchmark's targets: the neutral mock itself, Relay (this checkout or a revision), LiteLLM, Portkey, a URL.

``parse_target("relay:workers=2")`` reads a spec (bench/targets/spec.py lists the forms); ``started(specs, mock,
workdir)`` sets each up against the neutral mock, verifies every route with a plain and a streamed request and
yields the ``Target``s with the reasons of those skipped. A ``Target`` builds its own requests
(``target.request(shape, stream=..., client=..., upstream=...)``) and reports its processes' CPU and RSS.
"""

from bench.targets.spec import SpecError, TargetSpec, parse_target
from bench.targets.start import cache_dir, started
from bench.targets.target import Route, Target

__all__ = ["Route", "SpecError", "Target", "TargetSpec", "cache_dir", "parse_target", "started"]
