"""Settings fail fast: production refuses development or empty secrets, naming them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from settings import SECRETS, Settings, UnsafeSettings

ROOT = Path(__file__).resolve().parents[1]
SAFE = {variable: f"prod-{i}-{'x' * 24}" for i, (variable, _, _) in enumerate(SECRETS)}


def settings(monkeypatch: pytest.MonkeyPatch, env: str, **values: str) -> Settings:
    monkeypatch.chdir(ROOT / "tests")  # no .env file here
    monkeypatch.setenv("PITWALL_ENV", env)
    for variable, _, _ in SECRETS:
        monkeypatch.delenv(variable, raising=False)
    for variable, value in values.items():
        monkeypatch.setenv(variable, value)
    return Settings()


def test_production_with_every_default_names_every_secret(monkeypatch) -> None:
    with pytest.raises(UnsafeSettings) as refused:
        settings(monkeypatch, "production").require_safe()
    message = str(refused.value)
    assert "\n" not in message
    for variable, _, _ in SECRETS:
        assert variable in message


@pytest.mark.parametrize("variable", [v for v, _, _ in SECRETS])
def test_each_default_or_empty_secret_alone_refuses_production(monkeypatch, variable) -> None:
    for value in (None, ""):
        given = {k: v for k, v in SAFE.items() if k != variable}
        if value is not None:
            given[variable] = value
        with pytest.raises(UnsafeSettings, match=variable) as refused:
            settings(monkeypatch, "production", **given).require_safe()
        others = [v for v in SAFE if v != variable]
        assert not any(other in str(refused.value) for other in others)


def test_production_with_real_secrets_and_development_with_defaults_start(monkeypatch) -> None:
    settings(monkeypatch, "production", **SAFE).require_safe()
    settings(monkeypatch, "development").require_safe()


def test_page_token_key_is_its_own_secret(monkeypatch) -> None:
    from api.app import page_token_key

    one = page_token_key(settings(monkeypatch, "development", PITWALL_AUTH_PAGE_TOKEN_KEY="a" * 32))
    two = page_token_key(settings(monkeypatch, "development", PITWALL_AUTH_PAGE_TOKEN_KEY="b" * 32))
    same_webhook = settings(
        monkeypatch, "development", PITWALL_AUTH_PAGE_TOKEN_KEY="a" * 32,
        PITWALL_RECEIVER_WEBHOOK_SECRET="c" * 32,
    )  # fmt: skip
    assert one != two and page_token_key(same_webhook) == one


@pytest.mark.parametrize("entry", [[str(ROOT / "worker.py")], ["-m", "api"]])
def test_the_worker_and_the_receiver_refuse_to_start_with_one_clear_line(entry, tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PITWALL_")}
    env["PITWALL_ENV"] = "production"
    env["PITWALL_TEMPORAL_ADDRESS"] = "127.0.0.1:1"  # never reached
    done = subprocess.run(
        [sys.executable, *entry], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("refusing to start with development or empty secrets: set ")
    assert "PITWALL_AUTH_KEY_PEPPER" in lines[0]
