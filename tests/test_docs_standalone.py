"""The repository stands alone: its documents cite only documents inside it, and the README's quick start
installs what its examples import."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Documents of the project's planning, kept outside the repository: never cited from inside it.
OUTSIDE = ("../" + "shared", "DESIGN" + ".md", "PROTOCOLS" + ".md")
#: The package each top-level import of the README's examples comes from.
DISTRIBUTIONS = {"openai": "openai", "anthropic": "anthropic", "google": "google-genai"}


def texts() -> list[Path]:
    files = [ROOT / "README.md"]
    for folder in ("docs", "relay", "tests", "bench"):
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".md", ".py", ".toml", ".txt")]
    return files


def test_no_document_outside_the_repository_is_cited():
    cited = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in texts()
        for name in OUTSIDE
        if name in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert cited == []


def test_every_relative_markdown_link_resolves_inside_the_repository():
    broken = []
    for path in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            resolved = (path.parent / target.split("#", 1)[0]).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert broken == []


#: Files that name made-up paths on purpose (a test's fixture tree).
MADE_UP_PATHS = ("tests/test_import_cycles.py",)
#: A path inside the repository named in a text: ``relay/…/x.py``, ``docs/…/x.md``.
PATH = re.compile(r"(?<![\w/.*-])((?:relay|tests|bench|docs)/[\w/.-]*?\.(?:py|md|toml))\b")
#: A dotted name of Relay's in backticks: ``relay.dialects.convert.StreamConverter``.
DOTTED = re.compile(r"`(relay(?:\.\w+)+)`")


def test_every_repository_path_named_in_a_text_exists():
    """Docs and docstrings that name ``relay/…py`` (or ``docs/…md``) name files that exist: a module that moved
    (the dialect packages) leaves no reference to its old place behind."""
    missing = [
        f"{path.relative_to(ROOT)}: {named}"
        for path in texts()
        if str(path.relative_to(ROOT)) not in MADE_UP_PATHS
        for named in PATH.findall(path.read_text(encoding="utf-8", errors="replace"))
        if not (ROOT / named).exists()
    ]
    assert missing == []


def test_every_python_file_a_document_names_exists():
    """A document naming a module by its file name alone (``stream.py``) names one that exists somewhere."""
    names = {p.name for folder in ("relay", "tests", "bench") for p in (ROOT / folder).rglob("*.py")}
    missing = [
        f"{path.relative_to(ROOT)}: {named}"
        for path in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
        for named in re.findall(r"(?<![\w/.*-])(\w+\.py)\b", path.read_text(encoding="utf-8"))
        if named not in names
    ]
    assert missing == []


def test_every_dotted_relay_name_resolves():
    """``relay.x.y`` in backticks (documents) or double backticks (docstrings) names a module of Relay's, and what
    follows the module names something in it. Read from the files, not imported: a name is found when the module
    (the file of its dotted path, or its package's ``__init__.py``) holds it as a word."""
    packages = {p.name for p in (ROOT / "relay").iterdir() if (p / "__init__.py").exists()}
    packages |= {p.stem for p in (ROOT / "relay").glob("*.py")}
    broken = []
    for path in texts():
        text = path.read_text(encoding="utf-8", errors="replace")
        for dotted in set(DOTTED.findall(text)):
            parts = dotted.split(".")
            if parts[1] not in packages:
                continue  # relay.toml, relay.db, the relay.access logger
            if not _resolves(parts):
                broken.append(f"{path.relative_to(ROOT)}: {dotted}")
    assert broken == []


def _resolves(parts: list[str]) -> bool:
    for end in range(len(parts), 1, -1):
        base = ROOT.joinpath(*parts[:end])
        module = base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"
        if module.exists():
            source = module.read_text(encoding="utf-8")
            return all(re.search(rf"\b{re.escape(name)}\b", source) for name in parts[end:])
    return False


def test_quick_start_installs_the_sdks_its_examples_import_at_the_tested_versions():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    python = "\n".join(re.findall(r"```python\n(.*?)```", quick, re.S))
    imported = set(re.findall(r"^(?:from|import) (\w+)", python, re.M))
    assert imported == set(DISTRIBUTIONS)
    installs = " ".join(line for line in re.findall(r"```sh\n(.*?)```", quick, re.S) if "pip install" in line)
    pinned = dict(re.findall(r"'([\w-]+)==([\w.]+)'", installs))
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    tested = dict(spec.split("==", 1) for spec in extra if "==" in spec)
    for module in imported:
        package = DISTRIBUTIONS[module]
        assert package in pinned, f"the quick start does not install {package}"
        assert pinned[package] == tested[package], f"{package}: README {pinned[package]}, tests {tested[package]}"
