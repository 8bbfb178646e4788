"""Real Celery workers for the worker-kill test, as separate processes forked after one
Django start-up (it takes ~15 s on a loaded 2-core machine; once is enough):

    python -m tests.webhooks.worker_main first:default second:standby

prints `<name> <pid>` per worker and waits for them. Each worker is a solo-pool
process (one task at a time) with a short broker visibility timeout, so a task whose
worker died is handed out again within a second or two. Configured by the
environment the test passes (test database, its own Redis db, eager mode off)."""

import contextlib
import os
import signal
import sys

import django


def _run_worker(name: str, queue: str) -> None:
    from saas.celery import app

    app.conf.broker_transport_options = {
        "visibility_timeout": 1,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }
    app.worker_main(
        [
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "--prefetch-multiplier=1",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=WARNING",
            f"--hostname={name}@%h",
            f"--queues={queue}",
        ]
    )


def main(specs: list[str]) -> None:
    django.setup()
    import saas.celery  # noqa: F401  (imports the tasks before forking)

    children = []
    for spec in specs:
        name, queue = spec.split(":")
        pid = os.fork()
        if pid == 0:
            _run_worker(name, queue)
            os._exit(0)
        children.append(pid)
        print(name, pid, flush=True)

    def stop(signum: int, frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    for child in children:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(child, 0)


if __name__ == "__main__":
    main(sys.argv[1:])
