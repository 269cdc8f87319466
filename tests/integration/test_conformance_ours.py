"""The conformance harness against our own parts: our VTN (driven through its admin API) passes
every VTN case; our VEN gateway passes every VEN case."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from aiohttp import web

from certs.dev import DevPki
from conformance import report, scripted_vtn
from conformance.hooks import AdminApiHook
from conformance.model import CaseResult, Group, Verdict
from conformance.runner import run_cases
from conformance.scripted_vtn import ScriptedVtn
from conformance.ven_cases import CASES as VEN_CASES
from conformance.vtn_peer import Identity, VtnUnderTest
from conformance.vtn_suite import CASES as VTN_CASES
from flex4grid import cli as flex4grid_cli
from oadr.signing import SigningKey
from tests.integration.test_ven_gateway import gateway_config
from ven.gateway import build_gateway
from vtn import serve
from vtn.admin import tokens
from vtn.admin.tokens import TokenRole
from vtn.app import CONTEXT, VtnConfig, build_app
from vtn.config import VtnSettings


@dataclass
class OurVtn:
    url: str
    token: str
    app: web.Application


@asynccontextmanager
async def our_vtn(
    pki: DevPki, database_url: str, settings: VtnSettings | None = None, *, tls: bool = True
) -> AsyncIterator[OurVtn]:
    """Our VTN as `vtn serve` runs it, with an operator token for the admin API hook;
    `tls=False`: plain HTTP (--insecure-http), for the broken fronts of the other test file."""
    trust = pki.trust_store() if tls else None
    settings = settings or VtnSettings(insecure=not tls)
    app = build_app(VtnConfig(settings, database_url, trust))
    context = app[CONTEXT]
    await serve.prepare_database(context.store)
    token = await tokens.create(
        context.store, "conformance", TokenRole.OPERATOR, actor="t", now=datetime.now(UTC)
    )
    runner = web.AppRunner(app)
    await runner.setup()
    ssl_context = serve.server_ssl_context(pki.vtn.chain, pki.vtn.key, trust) if trust else None
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context).start()
    host, port = runner.addresses[0][:2]
    try:
        yield OurVtn(f"{'https' if tls else 'http'}://{host}:{port}", token, app)
    finally:
        await runner.cleanup()


def vtn_under_test(pki: DevPki, vtn: OurVtn, *, signed: bool = False) -> VtnUnderTest:
    identities = [Identity(cert=i.chain, key=i.key) for i in pki.vens[:2]]
    hook = AdminApiHook(vtn.url, vtn.token, pki.client_context(pki.vens[0]))
    return VtnUnderTest(
        vtn.url, identities, ca_file=pki.vtn.root, hook=hook, poll_pause_s=0.05,
        sign=signed, requires_signatures=signed,
    )  # fmt: skip


def save(name: str, results: list[CaseResult]) -> None:
    """With FLEX4GRID_CONFORMANCE_RESULTS=DIR, keep the verdicts for `conformance.table`."""
    directory = os.environ.get("FLEX4GRID_CONFORMANCE_RESULTS")
    if directory:
        Path(directory, f"{name}.json").write_text(report.results_json(results))


def failures(results: list[CaseResult]) -> str:
    return report.console_summary(results, "our VTN")


async def test_our_vtn_passes_every_vtn_case(pki: DevPki, database_url: str) -> None:
    async with our_vtn(pki, database_url) as vtn:
        results = await run_cases(VTN_CASES, vtn_under_test(pki, vtn), timeout_s=20)
    print(failures(results))
    verdicts = {r.case_id: r.verdict for r in results}
    expected = {r.case_id: Verdict.PASS for r in results}
    expected["VTN-SEC-08"] = Verdict.SKIP  # our default VTN does not require signatures
    assert verdicts == expected, failures(results)


async def test_our_vtn_requiring_signatures_passes_every_vtn_case(
    pki: DevPki, tmp_path: Path
) -> None:
    """The same cases, every message signed, and the one that needs such a VTN runs too."""
    settings = VtnSettings(
        require_signatures=True,
        signing_key=SigningKey.from_pem(pki.vtn.key.read_bytes(), pki.vtn.cert.read_bytes()),
    )
    async with our_vtn(pki, f"sqlite+aiosqlite:///{tmp_path}/vtn.db", settings) as vtn:
        results = await run_cases(VTN_CASES, vtn_under_test(pki, vtn, signed=True), timeout_s=20)
    save("ours-vtn", results)  # the docs table shows this run: it includes VTN-SEC-08
    assert {r.case_id: r.verdict for r in results} == {
        c.case_id: Verdict.PASS for c in VTN_CASES
    }, failures(results)


async def test_the_cli_grades_our_vtn_and_writes_its_reports(
    pki: DevPki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with our_vtn(pki, f"sqlite+aiosqlite:///{tmp_path}/vtn.db") as vtn:
        ven = pki.vens[0]
        arguments = [
            "conformance", "vtn", "--url", vtn.url, "--cert", str(ven.chain), "--key",
            str(ven.key), "--ca-file", str(pki.vtn.root), "--admin-url", vtn.url,
            "--admin-token", vtn.token, "--only", "registration", "--only", "events",
            "--junit", str(tmp_path / "vtn.xml"), "--html", str(tmp_path / "vtn.html"),
        ]  # fmt: skip
        code = await asyncio.to_thread(flex4grid_cli.main, arguments)
    out = capsys.readouterr().out
    assert code == 0, out
    suite = ET.parse(tmp_path / "vtn.xml").getroot()
    expected = [c for c in VTN_CASES if c.group in (Group.REGISTRATION, Group.EVENTS)]
    assert int(suite.get("tests", "0")) == len(expected)
    # one identity: the multi-VEN case is skipped saying what it needs
    assert int(suite.get("skipped", "0")) == 1 and "--cert/--key 2 times" in out
    assert "VTN-EVT-06" in (tmp_path / "vtn.html").read_text()


async def test_our_ven_passes_every_ven_case(pki: DevPki, tmp_path: Path) -> None:
    scripted = ScriptedVtn(poll_freq=timedelta(seconds=1))
    serving = await scripted_vtn.serve(scripted, "127.0.0.1", 0, pki.server_context())
    try:
        config = gateway_config(pki, serving.url, tmp_path, pki.vens[0])
        runner = build_gateway(config)
        task = asyncio.create_task(runner.run())
        try:
            first = [
                c for c in VEN_CASES if c.group is not Group.SECURITY and c.group is not Group.OPT
            ]
            results = await run_cases(first, scripted, timeout_s=30)
            # The household overrides a pending event by hand: the VEN must send a valid opt.
            opt_out = ["ven", "opt-out", "event-random", "--state", str(config.state_dir)]
            assert await asyncio.to_thread(flex4grid_cli.main, opt_out) == 0
            rest = [c for c in VEN_CASES if c not in first]
            results += await run_cases(rest, scripted, timeout_s=30)
        finally:
            runner.stop()
            async with asyncio.timeout(10):
                await task
    finally:
        await serving.runner.cleanup()
    print(report.console_summary(results, "our VEN"))
    save("ours-ven", results)
    verdicts = {r.case_id: r.verdict for r in results}
    expected = {r.case_id: Verdict.PASS for r in results}
    assert verdicts == expected, report.console_summary(results, "our VEN")
