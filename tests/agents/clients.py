"""The two agent CLIs the real-client runs use: pinned versions, how each is run, what each case asks and expects.

Each CLI runs with its default settings (its default model too: none is passed), pointed at Relay by its own
documented means, with everything it writes (HOME, its config and session files) in the run's own folder:

- Codex CLI: ``codex exec`` with a custom model provider (``wire_api = "responses"``) whose key is read from
  ``RELAY_API_KEY``; ``--skip-git-repo-check``; the shell case also ``--dangerously-bypass-approvals-and-sandbox``.
- Claude Code: ``claude -p`` with ``ANTHROPIC_BASE_URL`` and ``ANTHROPIC_API_KEY``, non-essential traffic,
  telemetry, error reporting and the auto-updater off; the shell case also ``--dangerously-skip-permissions``
  (which, as root, needs ``IS_SANDBOX=1``).

The cases put the mock model's directives in the prompt (docs/mock.md): ``mock:text`` answers with text although
tools are offered; ``mock:tool=NAME mock:args={JSON object}`` calls the CLI's own shell tool with those arguments
(a custom, freeform tool gets the object's ``input`` string), after which the mock answers
``Tool said: <the tool's output>``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import attrs

#: The npm packages and the versions the runs pin (run_real_clients.sh installs exactly these).
CODEX_PACKAGE = "@openai/codex"
CODEX_VERSION = "0.171.0"
CLAUDE_PACKAGE = "@anthropic-ai/claude-code"
CLAUDE_VERSION = "2.1.332"

CASES = ("plain", "shell")


@attrs.frozen
class Case:
    """One run's prompt and the strings its output must show."""

    prompt: str
    expect: tuple[str, ...]
    #: Whether the CLI may run commands without asking (the shell case).
    unattended: bool


def command_of(token: str) -> tuple[str, str]:
    """The shell command the shell case runs, and what it prints: the output is not a substring of the command,
    so seeing it proves the command ran."""
    return f"printf relay-ok-%s {token}", f"relay-ok-{token}"


def directive_args(value: object) -> str:
    """``mock:args=`` with its JSON, compact."""
    return "mock:args=" + json.dumps(value, separators=(",", ":"))


def plain_case(token: str) -> Case:
    marker = f"relay-plain-{token}"
    return Case(f"Say hello. {marker} mock:text", ("Echo:", marker), unattended=False)


def codex_shell_case(token: str) -> Case:
    """Codex's shell is code mode: the custom tool ``exec`` (namespace ``functions``) takes JavaScript, which
    reaches the shell through ``tools.exec_command({cmd})``."""
    command, output = command_of(token)
    script = f"const r = await tools.exec_command({{cmd: {json.dumps(command)}}}); text(r.output);"
    prompt = f"Run the command {command} and show its output. mock:tool=exec {directive_args({'input': script})}"
    return Case(prompt, ("Tool said:", output), unattended=True)


def claude_shell_case(token: str) -> Case:
    command, output = command_of(token)
    args = {"command": command, "description": "Print a marker"}
    prompt = f"Run the command {command} and show its output. mock:tool=Bash {directive_args(args)}"
    return Case(prompt, ("Tool said:", output), unattended=True)


@attrs.frozen
class Invocation:
    argv: list[str]
    env: dict[str, str]


def _base_env(home: Path) -> dict[str, str]:
    """A clean environment: no key or setting of the caller's reaches the CLI."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "TERM": "dumb",
        "NO_COLOR": "1",
    }


def codex(bin_dir: Path, base_url: str, key: str, home: Path, case: Case) -> Invocation:
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    provider = f'{{name = "Relay", base_url = "{base_url}/v1", wire_api = "responses", env_key = "RELAY_API_KEY"}}'
    argv = [str(bin_dir / "codex"), "exec", "--skip-git-repo-check", "-c", "model_provider=relay"]
    argv += ["-c", f"model_providers.relay={provider}"]
    if case.unattended:
        argv.append("--dangerously-bypass-approvals-and-sandbox")
    env = {**_base_env(home), "CODEX_HOME": str(codex_home), "RELAY_API_KEY": key}
    return Invocation([*argv, case.prompt], env)


def claude(bin_dir: Path, base_url: str, key: str, home: Path, case: Case) -> Invocation:
    argv = [str(bin_dir / "claude"), "-p"]
    if case.unattended:
        argv.append("--dangerously-skip-permissions")
    env = {
        **_base_env(home),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": key,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
    if os.geteuid() == 0:
        env["IS_SANDBOX"] = "1"
    return Invocation([*argv, case.prompt], env)


@attrs.frozen
class Client:
    name: str
    package: str
    version: str
    shell_case: Callable[[str], Case]
    invoke: Callable[[Path, str, str, Path, Case], Invocation]


CLIENTS = (
    Client("codex", CODEX_PACKAGE, CODEX_VERSION, codex_shell_case, codex),
    Client("claude", CLAUDE_PACKAGE, CLAUDE_VERSION, claude_shell_case, claude),
)


def case_for(client: Client, case: str, token: str) -> Case:
    return plain_case(token) if case == "plain" else client.shell_case(token)
