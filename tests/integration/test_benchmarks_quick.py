"""The VTN load benchmark, tiny (`--quick`), so it never rots: it must run end to end against
our VTN and OpenLEADR's, every poll answered, and write its JSON and plot. Figures are not
gated (CI machines vary); only that each phase measured something."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    out_json, out_png = tmp_path / "load.json", tmp_path / "load.png"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.vtn_load", "--quick",
         "--json", str(out_json), "--plot", str(out_png)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "share the same machine" in completed.stdout  # the caveat is printed with the table

    document = json.loads(out_json.read_text())
    servers = {s["server"] for s in document["scenarios"]}
    assert servers == {"flex4grid", "openleadr"}
    ours = next(s for s in document["scenarios"] if s["server"] == "flex4grid")
    assert ours["setup"]["registered"] == ours["vens"]  # every VEN registered over the wire
    assert ours["db_size_bytes"] > 0
    for scenario in document["scenarios"]:
        assert scenario["setup"]["errors"] == {}, scenario["name"]
        for phase in scenario["phases"]:
            where = f"{scenario['name']} {phase['label']}"
            assert phase["completed"] > 0 and phase["polls_per_s"] > 0, where
            assert phase["errors"] == {}, where
            assert 0 < phase["p50_ms"] <= phase["p99_ms"] <= phase["max_ms"], where
            # one connection per VEN, opened before the timed window and kept alive in it
            assert phase["open_connections"] == scenario["vens"], where
            assert phase["handshakes"] == 0, where
    rated = next(p for p in ours["phases"] if p["rate_per_s"] is not None)
    assert rated["polls_per_s"] <= rated["rate_per_s"] * 1.1  # open loop: offered, not more
    assert {r["phase"] for r in document["ratios"]} == {"unsigned", "signed"}
    ingest = next(p for p in ours["phases"] if p["readings_per_request"])
    assert ingest["readings_per_s"] > 0
    # durable: every reading the VTN acknowledged is in its database
    assert ours["setup"]["readings_stored"] >= ours["setup"]["readings_acknowledged"] > 0
    (fan_out,) = ours["fan_outs"]  # one event created by the admin API reaches every VEN
    assert fan_out["acked"] == ours["vens"] and fan_out["all_acked_s"] is not None
    # push: VENs registered with a transport address; the VTN pushed the event to each one's
    # endpoint (signed), and committed every VEN's signed oadrCreatedEvent from the replies
    pushed = next(s for s in document["scenarios"] if s["name"].endswith(" push"))
    assert pushed["setup"]["registered"] == pushed["vens"]
    push, again = pushed["fan_outs"]
    for fan_out in (push, again):
        assert fan_out["mode"] == "push" and fan_out["errors"] == {}
        assert fan_out["answered"] == fan_out["acked"] == pushed["vens"]
        assert fan_out["all_acked_s"] is not None and fan_out["pushes"] >= pushed["vens"]
    # a second event, once the endpoints closed the first's connections: each push is a new
    # connection, and each resumed the TLS session the VTN kept from its earlier pushes
    assert again["handshakes"] == again["resumed"] == pushed["vens"]
    assert out_png.read_bytes().startswith(b"\x89PNG")


def test_tls_handshake_benchmark_runs_and_resumes_every_second_connection() -> None:
    """benchmarks/tls_handshakes.py, small: plain TCP, full and resumed TLS (it fails itself if
    a connection of the second round offered no session), and OpenSSL alone where it can."""
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.tls_handshakes", "--connections", "40",
         "--seconds", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = {
        line.split("|")[1].strip(): line for line in completed.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| connection")
    }  # fmt: skip
    assert {"plain TCP", "TLS, full", "TLS, resumed"} <= set(rows), completed.stdout
    assert "10,000 new connections take" in completed.stdout
