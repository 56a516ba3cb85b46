"""The ``relay`` command: serve, reload, mock-upstream, keys, admin-keys, check-config."""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import time
from collections.abc import Sequence
from functools import partial

import trio

from relay import admin_keys_cli, keys_cli, log_setup, reload_cli
from relay.app import Relay
from relay.config import Config, ConfigError, MockOptions, load
from relay.http.limits import Limits
from relay.http.server import address_of, bind_socket, parse_listen, run
from relay.http.workers import supervise
from relay.mock.server import MockUpstream
from relay.startup_summary import summary
from relay.store import StoreError, open_store
from relay.store import keys as stored_keys
from relay.version import describe

DEFAULT_CONFIG = "relay.toml"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="relay", description="An edge relay for LLM APIs.")
    parser.add_argument("--version", action=_Version, help="print the version (and git revision) and exit")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("version", help="print the version (and git revision)")

    serve = commands.add_parser("serve", help="serve the relay")
    serve.add_argument("--config", default=DEFAULT_CONFIG, help="path of relay.toml (default: %(default)s)")
    serve.add_argument("--listen", help="HOST:PORT to listen on (overrides server.listen)")
    serve.add_argument("--workers", type=int, help="worker processes sharing the port (overrides server.workers)")
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument("--pid-file", help="write the process id here, for `relay reload` (overrides server.pid_file)")

    check = commands.add_parser("check-config", help="validate a relay.toml without serving")
    check.add_argument("path", nargs="?", default=DEFAULT_CONFIG)

    mock = commands.add_parser("mock-upstream", help="serve the deterministic mock model, OpenAI-compatible")
    mock.add_argument("--host", default="127.0.0.1")
    mock.add_argument("--port", type=int, default=9000, help="0 picks a free port (default: %(default)s)")
    mock.add_argument("--chunks", type=int, default=MockOptions().chunks, help="chunks per streamed answer")
    mock.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between chunks")
    mock.add_argument("--first-byte-delay", type=float, default=0.0, help="seconds before each answer")
    mock.add_argument("--api-key", help="require this key (default: accept any)")
    mock.add_argument("--quiet", action="store_true", help="no access log")

    keys_cli.add_parser(commands)
    reload_cli.add_parser(commands, DEFAULT_CONFIG)
    admin_keys_cli.add_parser(commands)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.command == "version":
        print(describe())
        return 0
    if args.command == "check-config":
        config = _load(args.path)
        if config is None:
            return 2
        print(f"{args.path}: ok ({len(config.channels)} channels, {len(config.keys)} keys)")
        return 0
    if args.command == "keys":
        return keys_cli.run(args)
    if args.command == "reload":
        return reload_cli.run(args)
    if args.command == "admin-keys":
        return admin_keys_cli.run(args)
    if args.command == "mock-upstream":
        return _mock_upstream(args)
    return _serve(args)


def _load(path: str) -> Config | None:
    try:
        return load(path)
    except ConfigError as error:
        for problem in error.problems:
            print(f"{path}: {problem}", file=sys.stderr)
        return None


def _serve(args: argparse.Namespace) -> int:
    # Until the server takes SIGHUP (a reload, relay/gateway/live.py), one must not end it as by default it would.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    config = _load(args.config)
    if config is None:
        return 2
    log_setup.configure(config.server.log_format, config.server.log_level)
    listen = args.listen or config.server.listen
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        print(f"--listen: {exc}", file=sys.stderr)
        return 2
    workers = args.workers or config.server.workers
    if not args.reuse_port and not _prepare_store(config):  # a worker's supervisor did it already
        return 2
    if workers > 1:
        holder = _bind(host, port, reuse_port=True, listen=False, backlog=0)
        if holder is None:
            return 2
        port = holder.getsockname()[1]
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        _log_summary(config, args.config, workers, shown)
        worker_argv = ["serve", "--config", args.config, "--listen", shown, "--workers", "1", "--reuse-port"]
        with reload_cli.pid_file(args.pid_file or config.server.pid_file):
            return supervise(
                worker_argv, workers, config.limits.shutdown_grace, lambda: _ready(f"{shown} ({workers} workers)")
            )
    sock = _bind(host, port, reuse_port=args.reuse_port, listen=True, backlog=config.limits.backlog)
    if sock is None:
        return 2
    if not args.reuse_port:  # a worker: its supervisor logged the summary
        _log_summary(config, args.config, workers, address_of(sock))
    try:
        with reload_cli.pid_file("" if args.reuse_port else args.pid_file or config.server.pid_file):
            trio.run(_run_relay, Relay(config, args.config), sock, config.limits)
    except StoreError as error:
        print(f"relay: store: {error}", file=sys.stderr)
        return 2
    return 0


class _Version(argparse.Action):
    """``--version``: the version and git revision, read only when asked (git runs in a subprocess)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=str(kwargs.get("help")))

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        print(describe())
        parser.exit()


def _log_summary(config: Config, config_path: str, workers: int, listen: str) -> None:
    log = logging.getLogger("relay.startup")
    for line in summary(config, config_path, workers=workers, listen=listen):
        log.info("%s", line)


def _prepare_store(config: Config) -> bool:
    """Migrate the store and put relay.toml's keys in it, once, before listening; False (and why, on
    stderr) when the store cannot be used."""

    async def prepare() -> None:
        async with open_store(config.store.url) as store:
            await store.migrate()
            await store.transaction(lambda tx: stored_keys.sync_config(tx, config.keys, time.time()))

    try:
        trio.run(prepare)
    except StoreError as error:
        print(f"relay: store: {error}", file=sys.stderr)
        return False
    return True


async def _run_relay(app: Relay, sock: socket.socket, limits: Limits) -> None:
    async with app.running():
        await run(app, sock, limits, on_ready=_ready)


def _mock_upstream(args: argparse.Namespace) -> int:
    if args.quiet:
        logging.getLogger("relay").setLevel(logging.WARNING)
    options = MockOptions(chunks=args.chunks, chunk_delay=args.chunk_delay, first_byte_delay=args.first_byte_delay)
    app = MockUpstream(options, api_key=args.api_key)
    sock = _bind(args.host, args.port, reuse_port=False, listen=True, backlog=Limits().backlog)
    if sock is None:
        return 2
    trio.run(partial(run, app, sock, Limits(shutdown_grace=5.0), on_ready=_ready))
    return 0


def _bind(host: str, port: int, *, reuse_port: bool, listen: bool, backlog: int) -> socket.socket | None:
    try:
        return bind_socket(host, port, reuse_port=reuse_port, listen=listen, backlog=backlog)
    except OSError as exc:
        print(f"relay: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return None


def _ready(address: str) -> None:
    print(f"relay: listening on {address}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
