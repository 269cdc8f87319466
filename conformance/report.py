"""Conformance run reports: a console summary, JUnit XML for CI, a self-contained HTML page.

Every case shows its id, the test plan ids it follows, the clause, the verdict and the reason;
a failed case also shows every message exchanged, pretty-printed and escaped. Pure: strings in,
strings out.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from xml.etree import ElementTree as ET

from lxml import etree

from conformance.model import CaseResult, Exchange, Verdict, summarize

_MARK = {Verdict.PASS: "PASS", Verdict.FAIL: "FAIL", Verdict.SKIP: "SKIP"}


def pretty_xml(text: str) -> str:
    """Indented XML when the text parses as XML (safely: no entities, no DTD), else as is."""
    if not text.lstrip().startswith("<") or "<!DOCTYPE" in text:
        return text
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
    try:
        root = etree.fromstring(text.encode(), parser)
    except etree.XMLSyntaxError:
        return text
    return etree.tostring(root, pretty_print=True, encoding="unicode")


def console_line(result: CaseResult) -> str:
    reason = f": {result.reason}" if result.reason else ""
    return (
        f"{_MARK[result.verdict]}  {result.case_id:<12} {result.title}"
        f" ({result.duration_s:.2f} s){reason}"
    )


def console_summary(results: Sequence[CaseResult], title: str) -> str:
    summary = summarize(list(results))
    lines = [f"{title}: {summary.total} cases"]
    lines += [console_line(r) for r in results]
    lines.append(f"{summary.passed} passed, {summary.failed} failed, {summary.skipped} skipped")
    return "\n".join(lines)


def _transcript(exchanges: Sequence[Exchange], notes: Sequence[str]) -> str:
    parts = [f"note: {n}" for n in notes]
    for x in exchanges:
        status = "no HTTP reply" if x.status is None else f"HTTP {x.status}"
        parts.append(
            f"--- {x.at.isoformat()} {x.sender} -> {x.service}\n{pretty_xml(x.request)}\n"
            f"--- reply ({status})\n{pretty_xml(x.reply)}"
        )
    return "\n".join(parts)


def junit_xml(results: Sequence[CaseResult], suite: str) -> str:
    summary = summarize(list(results))
    root = ET.Element(
        "testsuite",
        name=suite,
        tests=str(summary.total),
        failures=str(summary.failed),
        skipped=str(summary.skipped),
        errors="0",
        time=f"{sum(r.duration_s for r in results):.3f}",
    )
    for r in results:
        case = ET.SubElement(
            root,
            "testcase",
            classname=f"{suite}.{r.group.value}",
            name=f"{r.case_id} {r.title}",
            time=f"{r.duration_s:.3f}",
        )
        ET.SubElement(case, "properties").extend(
            [
                ET.Element("property", name="clause", value=r.clause),
                ET.Element("property", name="plan", value=" ".join(r.plan_ids)),
            ]
        )
        if r.verdict is Verdict.FAIL:
            failure = ET.SubElement(case, "failure", message=r.reason)
            failure.text = _transcript(r.exchanges, r.notes)
        elif r.verdict is Verdict.SKIP:
            ET.SubElement(case, "skipped", message=r.reason)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:4px 8px;
vertical-align:top;text-align:left}.pass{background:#e6f4e6}.fail{background:#fbe3e3}
.skip{background:#f4f1e0}pre{white-space:pre-wrap;font-size:12px;background:#f7f7f7;
padding:8px;max-height:40em;overflow:auto}details{margin-top:4px}
"""


def html_report(results: Sequence[CaseResult], title: str) -> str:
    summary = summarize(list(results))
    rows = []
    for r in results:
        detail = ""
        if r.verdict is Verdict.FAIL:
            transcript = html.escape(_transcript(r.exchanges, r.notes))
            detail = (
                f"<details><summary>{len(r.exchanges)} messages exchanged</summary>"
                f"<pre>{transcript}</pre></details>"
            )
        rows.append(
            f'<tr class="{r.verdict.value}"><td>{html.escape(r.case_id)}</td>'
            f"<td>{html.escape(' '.join(r.plan_ids))}</td><td>{html.escape(r.group.value)}</td>"
            f"<td>{html.escape(r.title)}<br><small>{html.escape(r.clause)}</small></td>"
            f"<td>{_MARK[r.verdict]}</td><td>{r.duration_s:.2f} s</td>"
            f"<td>{html.escape(r.reason)}{detail}</td></tr>"
        )
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>{summary.passed} passed, {summary.failed} failed, {summary.skipped} skipped"
        f" of {summary.total}</p><table><tr><th>case</th><th>test plan</th><th>group</th>"
        "<th>title and clause</th><th>verdict</th><th>time</th><th>reason</th></tr>"
        + "".join(rows)
        + "</table></body></html>\n"
    )


def results_json(results: Sequence[CaseResult]) -> str:
    """The verdicts of a run, for `conformance.table` (no transcripts)."""
    rows = [{"case_id": r.case_id, "verdict": r.verdict.value, "reason": r.reason} for r in results]
    return json.dumps(rows, indent=1) + "\n"
