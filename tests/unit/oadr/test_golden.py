"""Golden messages (tests/fixtures/xml/<oadrElementName>/*.xml), ours and OpenLEADR's: each one
validates, decodes to the payload its directory names and means what its example says, and
survives `decode(encode(m)) == m`. Our own files are byte-stable, so any change of the encoding
shows up here first (regenerate with `python -m tests.fixtures.make_golden` and review the diff).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flex4grid import cli
from oadr import codec, schema
from oadr.model import element_name
from tests.fixtures.make_golden import NOT_GOLDEN, OURS, THEIRS, XML_DIR, golden_files
from tests.interop.openleadr_bridge import restrict_to_openleadr
from tests.payload_examples import REPRESENTATIVE_PAYLOADS

REPO = Path(__file__).parents[3]
GOLDEN = sorted(p for p in XML_DIR.glob("*/*.xml") if p.parent.name not in NOT_GOLDEN)


def _id(path: Path) -> str:
    return str(path.relative_to(REPO))


def _example_key(path: Path) -> str:
    """tests/fixtures/xml/oadrPoll/openleadr-basic.xml -> "oadrPoll/basic"."""
    writer, _, case = path.stem.partition("-")
    assert writer in (OURS, THEIRS), f"{path.name}: golden files are named {OURS}-* or {THEIRS}-*"
    return f"{path.parent.name}/{case}"


def test_the_golden_files_are_the_ones_the_generator_writes() -> None:
    assert {_id(p) for p in GOLDEN} == {_id(p) for p in golden_files()}


@pytest.mark.parametrize("path", GOLDEN, ids=_id)
def test_golden_message_is_schema_valid(path: Path) -> None:
    schema.validate(codec.parse(path.read_bytes()))


@pytest.mark.parametrize("path", GOLDEN, ids=_id)
def test_golden_message_decodes_to_the_payload_its_directory_names(path: Path) -> None:
    payload = codec.decode(path.read_bytes())
    assert element_name(type(payload)) == path.parent.name


@pytest.mark.parametrize("path", GOLDEN, ids=_id)
def test_golden_message_survives_encode_decode(path: Path) -> None:
    payload = codec.decode(path.read_bytes())
    assert codec.decode(codec.encode(payload)) == payload


@pytest.mark.parametrize("path", GOLDEN, ids=_id)
def test_golden_message_means_what_its_example_says(path: Path) -> None:
    example = REPRESENTATIVE_PAYLOADS[_example_key(path)]
    expected = example if path.name.startswith(OURS) else restrict_to_openleadr(example)
    assert codec.decode(path.read_bytes()) == expected


@pytest.mark.parametrize("path", [p for p in GOLDEN if p.name.startswith(OURS)], ids=_id)
def test_our_golden_message_is_byte_stable(path: Path) -> None:
    data = path.read_bytes()
    assert codec.encode(codec.decode(data)) == data


# --- the README's `flex4grid oadr check` example ------------------------------------------------


def _main_job_file() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.partition("### `flex4grid oadr check FILE.xml`")[2]
    found = re.search(r"`(tests/fixtures/xml/\S+\.xml)`", section)
    assert found is not None, "README.md no longer names the file its `oadr check` example checks"
    return found.group(1)


def test_the_readme_main_job_file_is_a_golden_dso_load_dispatch() -> None:
    path = REPO / _main_job_file()
    assert path in GOLDEN
    assert codec.decode(path.read_bytes()) == REPRESENTATIVE_PAYLOADS[_example_key(path)]


def test_the_readme_main_job_checks_and_prints_the_event(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)  # the README's path is relative to the repository
    assert cli.main(["oadr", "check", _main_job_file()]) == 0
    out = capsys.readouterr().out
    assert "valid OpenADR 2.0b DistributeEvent" in out
    assert "signature: none" in out
    for shown in ("LOAD_DISPATCH", "setpoint", "powerReal", "feeder-12", "PT15M", "PT5M", "40.25"):
        assert shown in out, shown
