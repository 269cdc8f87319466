"""The run reports: console summary, JUnit XML and HTML say per case what a person needs, and a
failure's exchanged messages appear pretty-printed and escaped."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from conformance import report
from conformance.model import CaseResult, Exchange, Group, Verdict

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
POLL = '<oadrPayload xmlns="http://openadr.org/oadr-2.0b/2012/07"><a><b>x</b></a></oadrPayload>'


def make_result(verdict: Verdict, reason: str = "", **overrides: object) -> CaseResult:
    fields: dict[str, object] = {
        "case_id": f"VTN-REG-{verdict.value}",
        "plan_ids": ("N1_0010",),
        "title": "Query registration",
        "clause": "oadrQueryRegistration -> 200",
        "group": Group.REGISTRATION,
        "verdict": verdict,
        "reason": reason,
        "duration_s": 0.25,
        "exchanges": (Exchange(NOW, "ven[0]", "OadrPoll", POLL, "<script>alert(1)</script>", 200),),
        "notes": ("hook (admin API): create_event",),
    }
    return CaseResult(**(fields | overrides))  # type: ignore[arg-type]


RESULTS = [
    make_result(Verdict.PASS),
    make_result(Verdict.FAIL, "venID 'a' <b> is not 'b'"),
    make_result(Verdict.SKIP, "needs the VTN to create an event"),
]


def test_console_summary_lists_every_case_and_counts() -> None:
    text = report.console_summary(RESULTS, "run")
    assert "3 cases" in text
    assert "1 passed, 1 failed, 1 skipped" in text
    assert "FAIL  VTN-REG-fail" in text and "venID 'a' <b> is not 'b'" in text


def test_junit_xml_counts_failures_and_skips_and_carries_the_transcript() -> None:
    suite = ET.fromstring(report.junit_xml(RESULTS, "vtn"))
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    cases = suite.findall("testcase")
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("message") == "venID 'a' <b> is not 'b'"
    assert "<script>alert(1)</script>" in (failure.text or "")  # XML-escaped on the wire
    assert "hook (admin API)" in (failure.text or "")
    assert cases[2].find("skipped") is not None and cases[0].find("failure") is None


def test_html_escapes_what_peers_sent_and_shows_it_only_for_failures() -> None:
    page = report.html_report(RESULTS, "run <1>")
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("messages exchanged") == 1  # only the failed case
    assert "run &lt;1&gt;" in page
    assert "venID &#x27;a&#x27; &lt;b&gt;" in page


def test_xml_is_pretty_printed_and_hostile_text_left_alone() -> None:
    assert report.pretty_xml(POLL).count("\n") >= 4
    doctype = '<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'
    assert report.pretty_xml(doctype) == doctype
    assert report.pretty_xml("not xml") == "not xml"


def test_results_json_keeps_verdicts_and_reasons() -> None:
    rows = json.loads(report.results_json(RESULTS))
    assert [(r["case_id"], r["verdict"]) for r in rows] == [
        ("VTN-REG-pass", "pass"), ("VTN-REG-fail", "fail"), ("VTN-REG-skip", "skip"),
    ]  # fmt: skip
