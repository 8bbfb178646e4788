"""Production mode refuses to start without its secrets; development has safe defaults."""

import os
import subprocess
import sys

import pytest

PROBE = "import saas.settings as s; print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.PUBLIC_SCHEME)"


def _load_settings(**env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "JWT_SIGNING_KEY", "DJANGO_ENV", "DEBUG"}
    }
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, "SECRET_KEY, JWT_SIGNING_KEY"),
        ({"SECRET_KEY": "s" * 40}, "JWT_SIGNING_KEY"),
        ({"SECRET_KEY": "short", "JWT_SIGNING_KEY": "j" * 40}, "SECRET_KEY"),
    ],
)
def test_production_refuses_to_start_without_its_secrets(env, missing):
    result = _load_settings(DJANGO_ENV="production", **env)
    assert result.returncode == 1
    assert f"production mode needs {missing} (at least 32 characters each)" in result.stderr


def test_production_starts_with_its_secrets_and_secure_defaults():
    result = _load_settings(DJANGO_ENV="production", SECRET_KEY="s" * 40, JWT_SIGNING_KEY="j" * 40)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False True https"


def test_development_defaults_start_without_secrets():
    result = _load_settings()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False False http"
