"""Target specs as the command line gives them: ``KIND[@REV][:key=value,key=value]``.

    direct                                   the neutral mock itself, each dialect natively
    relay                                    this checkout's Relay, generated relay.toml, 1 worker
    relay:workers=2,config=PATH              ... with 2 workers, or with a given relay.toml
    relay@REV                                another revision's Relay (git archive + its own venv)
    litellm[:version=1.108.7,workers=1]      LiteLLM proxy, a pinned version in its own venv
    portkey[:version=1.15.2]                 Portkey gateway from npm, run with node
    url:dialect=anthropic,url=http://host:port,key=K,model=M   any endpoint (no path: the dialect's own)

Every spec takes ``name=LABEL`` (the label in tables; default: the spec's kind, ``relay@REV`` for a revision).
Values cannot hold commas.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.neutral.wire import DIALECTS

KINDS = ("direct", "relay", "litellm", "portkey", "url")
#: The options each kind takes (``name`` too, for all).
OPTIONS: dict[str, tuple[str, ...]] = {
    "direct": (),
    "relay": ("workers", "config"),
    "litellm": ("version", "workers"),
    "portkey": ("version",),
    "url": ("dialect", "url", "key", "model"),
}


class SpecError(ValueError):
    """A target spec that cannot be read: the message says what is wrong and what is allowed."""


@dataclass(frozen=True)
class TargetSpec:
    kind: str
    name: str
    rev: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.options.get(key, default)

    def workers(self) -> int:
        text = self.options.get("workers", "1")
        if not text.isdigit() or int(text) < 1:
            raise SpecError(f"{self.name}: workers must be a whole number >= 1, not {text!r}")
        return int(text)


def parse_target(spec: str) -> TargetSpec:
    """A ``TargetSpec`` from ``spec`` (the module docstring's forms); SpecError when it is not one."""
    text = spec.strip()
    head, _, tail = text.partition(":")
    kind, _, rev = head.partition("@")
    if kind not in KINDS:
        raise SpecError(f"{spec!r}: unknown target kind {kind!r} (known: {', '.join(KINDS)})")
    if rev and kind != "relay":
        raise SpecError(f"{spec!r}: only relay takes @REV")
    if "@" in head and not rev:
        raise SpecError(f"{spec!r}: relay@ needs a git revision")
    options: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in tail.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise SpecError(f"{spec!r}: {item!r} is not key=value")
        if key != "name" and key not in OPTIONS[kind]:
            allowed = ", ".join((*OPTIONS[kind], "name"))
            raise SpecError(f"{spec!r}: {kind} takes no option {key!r} (it takes: {allowed})")
        if key in options:
            raise SpecError(f"{spec!r}: {key} given twice")
        options[key] = value
    if kind == "url":
        missing = [k for k in ("dialect", "url", "model") if k not in options]
        if missing:
            raise SpecError(f"{spec!r}: url needs {', '.join(missing)} (and usually key)")
        if options["dialect"] not in DIALECTS:
            raise SpecError(f"{spec!r}: dialect must be one of {', '.join(DIALECTS)}")
        if not options["url"].startswith("http://"):
            raise SpecError(
                f"{spec!r}: url must start with http:// (the load generators speak plain HTTP/1.1; put a local"
                " TLS-terminating proxy in front of an https endpoint)"
            )
    name = options.pop("name", None) or (f"relay@{rev}" if rev else kind)
    target = TargetSpec(kind=kind, name=name, rev=rev or None, options=options)
    if "workers" in options:
        target.workers()
    return target
