"""`flex4grid vtn serve --with ...`: the market, forecast, data service and console served by a
real `vtn serve` process over TLS, in one admin API and one OpenAPI document."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import urllib.request
from pathlib import Path

import pytest

from certs.dev import DevPki
from dataservice import keys
from tests.integration.test_vtn_cli import ROOT, free_port, run, serve_command, wait_healthy


def _get(url: str, pki: DevPki, token: str | None = None) -> tuple[int, str, str]:
    context = ssl.create_default_context(cafile=str(pki.vtn.root))
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, context=context, timeout=10) as reply:
        return reply.status, reply.headers.get_content_type(), reply.read().decode()


def test_serve_with_all_parts(
    tmp_path: Path, pki: DevPki, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "data.key"
    keys.create_file(key_file)
    db = f"sqlite:///{tmp_path / 'vtn.db'}"
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FLEX4GRID_DATA_KEY_FILE": str(key_file)}
    process = subprocess.Popen(
        serve_command(pki, db, port, "--with", "all"), cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"https://127.0.0.1:{port}"
    try:
        wait_healthy(url, pki, process)
        _, _, body = _get(url + "/admin/v1/openapi.json", pki)
        paths = json.loads(body)["paths"]
        for prefix in ("/admin/v1/vens", "/admin/v1/market/", "/admin/v1/forecast/",
                       "/admin/v1/data/"):  # fmt: skip
            assert any(p.startswith(prefix) for p in paths), prefix

        code, out, _ = run(capsys, "vtn", "token", "create", "--db", db, "--name", "ops")
        assert code == 0
        status, kind, body = _get(url + "/admin/v1/market/points", pki, out.strip())
        assert (status, kind, json.loads(body)) == (200, "application/json", [])

        status, kind, body = _get(url + "/console/login", pki)
        assert (status, kind) == (200, "text/html") and "<form" in body
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err.decode()
    assert "Traceback" not in err.decode()


def test_serve_refuses_the_data_service_without_its_key(
    tmp_path: Path, pki: DevPki, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLEX4GRID_DATA_KEY_FILE", raising=False)
    monkeypatch.delenv("FLEX4GRID_DATA_KEY", raising=False)
    db = f"sqlite:///{tmp_path / 'vtn.db'}"
    command = serve_command(pki, db, free_port(), "--with", "data")
    code, _, err = run(capsys, *command[3:])
    assert code == 1
    assert "FLEX4GRID_DATA_KEY_FILE" in err and len(err.strip().splitlines()) == 1, err
