"""saas.embedded: which servers it picks and what it hands the child (no servers started)."""

import socket
import sys

import dj_database_url

from saas.embedded import (
    MODES,
    backing_services_resolve,
    command_run,
    exit_code_of,
    tcp_port_open,
)
from saas.env import celery_broker_url, socket_database_url


def test_configured_urls_are_used_as_given_and_nothing_is_started(tmp_path):
    # when
    services = backing_services_resolve(
        mode=MODES["test"],
        data_dir=tmp_path,
        environ={"DATABASE_URL": "postgres://db.internal/x", "REDIS_URL": "redis://r.internal/2"},
    )
    # then
    assert services.env == {}
    assert services.handles == []
    assert services.notes == [
        "PostgreSQL: DATABASE_URL from the environment",
        "Redis: REDIS_URL from the environment",
    ]
    assert list(tmp_path.iterdir()) == []


def test_modes_keep_tests_on_their_own_redis_database_and_run_off_the_default_ports():
    assert (MODES["test"].probe_tcp, MODES["test"].redis_db) == (True, 15)
    assert (MODES["run"].probe_tcp, MODES["run"].redis_db) == (False, 0)


def test_embedded_postgres_url_points_django_at_the_socket_directory():
    # when
    url = socket_database_url("/srv/app/.data/pg", "saas")
    # then
    parsed = dj_database_url.parse(url)
    assert (parsed["HOST"], parsed["NAME"], parsed["USER"], parsed["PORT"]) == (
        "/srv/app/.data/pg",
        "saas",
        "postgres",
        "",
    )


def test_embedded_redis_url_is_spelt_for_kombu_too():
    assert (
        celery_broker_url("unix:///tmp/tmpab/redis.socket?db=15")
        == "redis+socket:///tmp/tmpab/redis.socket?db=15"
    )


def test_a_closed_port_is_reported_closed():
    # given a port nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # then
    assert tcp_port_open("127.0.0.1", port, timeout=0.2) is False


def test_the_child_gets_the_urls_and_its_exit_code_is_returned(tmp_path):
    # given
    out = tmp_path / "seen"
    script = "import os, sys; open(sys.argv[1], 'w').write(os.environ['REDIS_URL']); sys.exit(3)"
    # when
    code = command_run(
        [sys.executable, "-c", script, str(out)], env={"REDIS_URL": "unix:///x.sock?db=0"}
    )
    # then
    assert code == 3
    assert out.read_text() == "unix:///x.sock?db=0"


def test_a_child_killed_by_a_signal_exits_like_a_shell_reports_it():
    assert exit_code_of(-15) == 143
    assert exit_code_of(0) == 0
