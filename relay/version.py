"""Relay's version: the installed package's, and the git revision when run from a checkout."""

from __future__ import annotations

import importlib.metadata
import subprocess
from pathlib import Path

#: The folder that holds the ``relay`` package (a checkout's root when run from one).
_ROOT = Path(__file__).resolve().parent.parent


def package_version() -> str:
    """The version of the installed ``relay`` distribution, or ``unknown`` when it is not installed."""
    try:
        return importlib.metadata.version("relay")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def git_revision(root: Path = _ROOT) -> str | None:
    """The short commit of the checkout ``root`` is, ``+dirty`` when its files changed; None outside one."""
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if changed else head or None


def describe() -> str:
    """``relay 0.1.0`` or, from a checkout, ``relay 0.1.0 (git 1234abcd5678)``."""
    revision = git_revision()
    return f"relay {package_version()}" + (f" (git {revision})" if revision else "")
