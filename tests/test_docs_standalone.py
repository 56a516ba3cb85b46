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
