"""The reports of a run: ``report.html`` (for people), ``junit.xml`` (for CI) and ``report.json`` (for tools).

:func:`write_reports` writes the three into a folder. The same renderers serve the connector-validation report
(``kind == "connector"``: each "case" is a message an app sent, each "step" a rule family); only the wording of the
headings changes.

- ``report.html`` is one self-contained file (inline CSS, a few lines of optional JavaScript for "expand all"):
  a PASS/FAIL banner and the run's facts, a table of the cases, then each case with its description, spec reference,
  steps, the request/response excerpts of each step (collapsed) and, for a case that did not pass, why. Every text
  is HTML-escaped: a hub's answers are shown, never interpreted.
- ``junit.xml`` follows the JUnit XML format GitLab, Jenkins, GitHub and Azure read: ``<testsuites>`` holding one
  ``<testsuite>`` per profile, one ``<testcase>`` per case, ``<failure>``/``<error>``/``<skipped>`` as the outcome
  says, and the steps in ``<system-out>``.
- ``report.json`` is :meth:`SuiteResult.to_json() <rsb_connector.conformance.results.SuiteResult.to_json>`
  (read it back with :meth:`~rsb_connector.conformance.results.SuiteResult.from_json`).

The excerpts are already masked by the runner (SSINs, tokens, document content): nothing here unmasks them.
"""

from __future__ import annotations

import html
import json
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from lxml import etree

from .. import __version__
from .results import CaseResult, Evidence, Outcome, StepResult, SuiteResult

__all__ = ["REPORT_FILES", "render_html", "render_json", "render_junit", "write_reports"]

REPORT_FILES: Final = {"html": "report.html", "junit": "junit.xml", "json": "report.json"}
"""The files :func:`write_reports` writes, by key."""


def write_reports(result: SuiteResult, directory: str | Path) -> dict[str, Path]:
    """Write ``report.html``, ``junit.xml`` and ``report.json`` for ``result`` into ``directory`` (created when
    missing, files replaced) and return their paths by key (``html``, ``junit``, ``json``)."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {key: folder / name for key, name in REPORT_FILES.items()}
    paths["html"].write_text(render_html(result), encoding="utf-8")
    paths["junit"].write_bytes(render_junit(result))
    paths["json"].write_text(render_json(result), encoding="utf-8")
    return paths


def render_json(result: SuiteResult) -> str:
    """``report.json``: the result as JSON (UTF-8 text, indented)."""
    return json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n"


# ------------------------------------------------------------------------------------------------- wording


@dataclass(frozen=True, slots=True)
class _Wording:
    """The words a report uses for its kind."""

    heading: str
    case: str
    cases: str
    steps: str
    do: str
    expect: str
    passed_all: str
    not_passed: str
    nothing: str
    why: str
    target: str
    caller: str
    junit_prefix: str


_CONFORMANCE: Final = _Wording(
    heading="Conformance report",
    case="case",
    cases="cases",
    steps="Steps",
    do="What the suite did",
    expect="What a conformant hub answers",
    passed_all="every selected case passed",
    not_passed="did not pass",
    nothing="no case was run",
    why="Why it did not pass",
    target="Hub under test",
    caller="Run by",
    junit_prefix="rsb.conformance",
)
_CONNECTOR: Final = _Wording(
    heading="Connector validation report",
    case="message",
    cases="messages",
    steps="Rule families",
    do="Rule family",
    expect="What the rules require",
    passed_all="every recorded message conforms",
    not_passed="do not conform",
    nothing="the hub recorded no message",
    why="Why it does not conform",
    target="Hub that recorded the messages",
    caller="Requested by",
    junit_prefix="rsb.connector",
)


def _wording(result: SuiteResult) -> _Wording:
    return _CONNECTOR if result.kind == "connector" else _CONFORMANCE


# ------------------------------------------------------------------------------------------------- formatting


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _when(moment: datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)} min {rest:.1f} s"


def _plural(count: int, word: str) -> str:
    if count == 1:
        return f"1 {word}"
    return f"{count} {word}s" if not word.endswith("s") else f"{count} {word}"


def _label(outcome: Outcome) -> str:
    return outcome.value.upper()


def _e(value: object) -> str:
    """HTML-escaped text (quotes too: safe in attributes)."""
    return html.escape(str(value), quote=True)


_ANCHOR_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.-]+")


def _anchor(index: int, case: CaseResult) -> str:
    return f"case-{index}-{_ANCHOR_UNSAFE.sub('-', case.id)[:60]}"


def _why(case: CaseResult) -> tuple[StepResult | None, str]:
    """The step that did not pass (if any) and the reason, for a case that did not pass."""
    step = case.failed_step
    if step is not None:
        return step, step.message or case.message
    return None, case.message or "no reason was recorded"


def _headline(case: CaseResult) -> str:
    """The one-line reason of a case that did not pass: the runner's (``step 2: ...``) or the step's."""
    return case.message or _why(case)[1]


# ------------------------------------------------------------------------------------------------- HTML

_CSS: Final = """
:root { --pass: #1a7f37; --fail: #cf222e; --error: #bc4c00; --skip: #6e7781; --line: #d0d7de; --soft: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; margin: 0;
       padding: 24px 32px 64px; max-width: 1280px; }
h1 { font-size: 24px; margin: 0 0 12px; } h2 { font-size: 19px; margin: 32px 0 12px; }
h4 { font-size: 13px; margin: 10px 0 4px; text-transform: uppercase; letter-spacing: .04em; color: #57606a; }
code, pre { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; margin: 0;
      white-space: pre-wrap; word-break: break-word; max-height: 480px; overflow: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 6px 8px; border-bottom: 1px solid var(--line); }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
.banner { font-size: 20px; font-weight: 700; color: #fff; padding: 14px 18px; border-radius: 8px; margin: 8px 0 16px; }
.banner.pass { background: var(--pass); } .banner.fail { background: var(--fail); }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0 0 16px; }
.facts dt { color: #57606a; } .facts dd { margin: 0; word-break: break-all; }
.counts { width: auto; margin-bottom: 12px; } .counts td { min-width: 90px; }
.notes { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 8px 12px 8px 28px; }
.badge { display: inline-block; min-width: 64px; text-align: center; font-size: 12px; font-weight: 700;
         color: #fff; border-radius: 12px; padding: 1px 8px; }
.badge.passed { background: var(--pass); } .badge.failed { background: var(--fail); }
.badge.error { background: var(--error); } .badge.skipped { background: var(--skip); }
.reason { color: var(--fail); font-size: 13px; margin-top: 2px; }
.reason.skipped { color: var(--skip); } .reason.error { color: var(--error); }
details.case { border: 1px solid var(--line); border-radius: 8px; margin: 10px 0; }
details.case > summary { cursor: pointer; padding: 10px 12px; font-weight: 600; background: var(--soft);
                         border-radius: 8px; }
details.case[open] > summary { border-bottom: 1px solid var(--line); border-radius: 8px 8px 0 0; }
details.case.failed { border-color: var(--fail); } details.case.error { border-color: var(--error); }
.case-body { padding: 4px 14px 14px; }
.why { border-left: 5px solid var(--fail); background: #ffebe9; padding: 10px 14px; margin: 12px 0;
       border-radius: 0 6px 6px 0; }
.why.error { border-color: var(--error); background: #fff1e5; }
.why.skipped { border-color: var(--skip); background: var(--soft); }
.why strong { display: block; margin-bottom: 4px; }
.why .got { white-space: pre-wrap; word-break: break-word; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 10px 0; }
.meta dt { color: #57606a; } .meta dd { margin: 0; }
tr.step-failed td { background: #ffebe9; } tr.step-error td { background: #fff1e5; }
tr.step-skipped td { color: var(--skip); }
td.message { white-space: pre-wrap; word-break: break-word; }
details.evidence { margin: 2px 0 6px; } details.evidence > summary { cursor: pointer; color: #0969da; }
details.exchange { margin: 6px 0 6px 16px; } details.exchange > summary { cursor: pointer; }
.status { font-weight: 600; } .status.bad { color: var(--fail); }
.toolbar { margin: 8px 0; } .toolbar button { font: inherit; font-size: 13px; margin-right: 6px; padding: 3px 10px;
          border: 1px solid var(--line); border-radius: 6px; background: #fff; cursor: pointer; }
footer { margin-top: 40px; color: #57606a; font-size: 13px; }
"""

_JS: Final = """
function rsbSetAll(open) { document.querySelectorAll('details.case').forEach(function (d) { d.open = open; }); }
function rsbOnlyProblems(on) {
  document.querySelectorAll('details.case.passed, tr.case-row.passed').forEach(function (e) {
    e.style.display = on ? 'none' : ''; });
}
"""


def _html_facts(result: SuiteResult, words: _Wording) -> str:
    facts = [
        (words.target, result.target or "—"),
        (words.caller, result.caller or "—"),
        ("Started", _when(result.started)),
        ("Finished", _when(result.finished)),
        ("Duration", _duration(result.seconds)),
        ("Tool", f"rsb-connector {__version__}"),
    ]
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts)
    return f'<dl class="facts">{items}</dl>'


def _html_banner(result: SuiteResult, words: _Wording) -> str:
    total = len(result.cases)
    if result.passed:
        text = f"PASS — {words.passed_all} ({_plural(total, words.case)})"
    elif total == 0:
        text = f"FAIL — {words.nothing}"
    else:
        bad = total - result.count(Outcome.PASSED)
        text = f"FAIL — {bad} of {_plural(total, words.case)} {words.not_passed}"
    return f'<div class="banner {"pass" if result.passed else "fail"}" id="verdict">{_e(text)}</div>'


def _html_counts(result: SuiteResult) -> str:
    head = "".join(f'<th class="num">{_e(o.value)}</th>' for o in Outcome) + '<th class="num">total</th>'
    cells = (
        "".join(f'<td class="num">{result.count(o)}</td>' for o in Outcome)
        + f'<td class="num">{len(result.cases)}</td>'
    )
    return f'<table class="counts"><tr>{head}</tr><tr>{cells}</tr></table>'


def _html_notes(notes: Iterable[str]) -> str:
    items = "".join(f"<li>{_e(n)}</li>" for n in notes)
    return f'<ul class="notes">{items}</ul>' if items else ""


def _html_case_table(result: SuiteResult, words: _Wording) -> str:
    rows = []
    for index, case in enumerate(result.cases, 1):
        reason = ""
        if case.outcome is not Outcome.PASSED:
            reason = f'<div class="reason {_e(case.outcome.value)}">{_e(_headline(case))}</div>'
        rows.append(
            f'<tr class="case-row {_e(case.outcome.value)}">'
            f'<td><a href="#{_anchor(index, case)}"><code>{_e(case.id)}</code></a></td>'
            f"<td>{_e(case.title)}{reason}</td>"
            f"<td>{_e(case.profile)}</td><td>{_e(case.actor)}</td>"
            f'<td><span class="badge {_e(case.outcome.value)}">{_label(case.outcome)}</span></td>'
            f'<td class="num">{case.seconds:.2f}</td></tr>'
        )
    head = (
        '<tr><th>id</th><th>title</th><th>profile</th><th>actor</th><th>outcome</th><th class="num">seconds</th></tr>'
    )
    body = "".join(rows) or f'<tr><td colspan="6">{_e(words.nothing.capitalize())}.</td></tr>'
    return f'<table class="cases">{head}{body}</table>'


def _html_exchange(evidence: Evidence) -> str:
    status = "note" if evidence.status is None else str(evidence.status)
    bad = " bad" if evidence.status is not None and evidence.status >= 400 else ""
    parts = [
        f'<details class="exchange"><summary>{_e(evidence.title)} → '
        f'<span class="status{bad}">{_e(status)}</span></summary>'
    ]
    if evidence.request:
        parts.append(f"<h4>Request</h4><pre>{_e(evidence.request)}</pre>")
    if evidence.response:
        parts.append(f"<h4>Response</h4><pre>{_e(evidence.response)}</pre>")
    parts.append("</details>")
    return "".join(parts)


def _html_evidence(label: str, evidence: list[Evidence]) -> str:
    if not evidence:
        return ""
    inner = "".join(_html_exchange(e) for e in evidence)
    return f'<details class="evidence"><summary>{_e(label)} ({len(evidence)})</summary>{inner}</details>'


def _html_steps(case: CaseResult, words: _Wording) -> str:
    rows = []
    for step in case.steps:
        outcome = _e(step.outcome.value)
        rows.append(
            f'<tr class="step-{outcome}"><td class="num">{step.number}</td><td>{_e(step.do)}</td>'
            f"<td>{_e(step.expect)}</td>"
            f'<td><span class="badge {outcome}">{_label(step.outcome)}</span></td>'
            f'<td class="message">{_e(step.message)}</td><td class="num">{step.seconds:.2f}</td></tr>'
        )
        if step.evidence:
            exchanges = _html_evidence(f"Exchanges of step {step.number}", step.evidence)
            rows.append(f'<tr class="step-{outcome} exchanges"><td></td><td colspan="5">{exchanges}</td></tr>')
    head = (
        f'<tr><th class="num">#</th><th>{_e(words.do)}</th><th>{_e(words.expect)}</th><th>outcome</th>'
        f'<th>message</th><th class="num">s</th></tr>'
    )
    return f'<h4>{_e(words.steps)}</h4><table class="steps">{head}{"".join(rows)}</table>'


def _html_why(case: CaseResult, words: _Wording) -> str:
    if case.outcome is Outcome.PASSED:
        return ""
    step, why = _why(case)
    kind = _e(case.outcome.value)
    if case.outcome is Outcome.SKIPPED:
        return f'<div class="why skipped"><strong>Not run</strong><div class="got">{_e(why)}</div></div>'
    lines = [f'<div class="why {kind}"><strong>{_e(words.why)}</strong>']
    if step is not None:
        lines.append(f"<div>Step {step.number}: {_e(step.do)}</div>")
        lines.append(f"<div>Expected: {_e(step.expect)}</div>")
        lines.append(f'<div class="got">Got: {_e(why)}</div>')
    else:
        lines.append(f'<div class="got">{_e(why)}</div>')
    lines.append("</div>")
    return "".join(lines)


def _html_case(index: int, case: CaseResult, words: _Wording) -> str:
    outcome = _e(case.outcome.value)
    is_open = " open" if case.outcome in (Outcome.FAILED, Outcome.ERROR) else ""
    meta = [("Profile", case.profile), ("Actor under test", case.actor), ("Spec reference", case.reference)]
    meta_html = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in meta if v)
    parts = [
        f'<details class="case {outcome}" id="{_anchor(index, case)}"{is_open}>',
        f'<summary><span class="badge {outcome}">{_label(case.outcome)}</span> <code>{_e(case.id)}</code> '
        f"{_e(case.title)} <small>({case.seconds:.2f} s)</small></summary>",
        '<div class="case-body">',
        _html_why(case, words),
        f'<dl class="meta">{meta_html}</dl>',
        f'<p class="description">{_e(case.description)}</p>' if case.description else "",
        _html_evidence("Setup exchanges, outside the steps", case.setup),
        _html_steps(case, words),
        "</div></details>",
    ]
    return "".join(parts)


def render_html(result: SuiteResult) -> str:
    """``report.html``: one self-contained page (see the module docstring)."""
    words = _wording(result)
    title = result.title or words.heading
    cases = "".join(_html_case(i, c, words) for i, c in enumerate(result.cases, 1))
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(words.heading)}: {_e(title)}</title><style>{_CSS}</style></head><body>",
            f"<header><h1>{_e(words.heading)}: {_e(title)}</h1>",
            _html_banner(result, words),
            _html_facts(result, words),
            _html_counts(result),
            _html_notes(result.notes),
            "</header>",
            f"<section><h2>{_e(words.cases.capitalize())}</h2>",
            _html_case_table(result, words),
            "</section>",
            f"<section><h2>{_e(words.case.capitalize())} details</h2>",
            '<div class="toolbar"><button type="button" onclick="rsbSetAll(true)">expand all</button>'
            '<button type="button" onclick="rsbSetAll(false)">collapse all</button>'
            '<label><input type="checkbox" onchange="rsbOnlyProblems(this.checked)"> only those that did not pass'
            "</label></div>",
            cases,
            "</section>",
            f"<footer>Written by rsb-connector {_e(__version__)} on {_e(_when(result.finished))}. "
            "Request and response excerpts are masked: SSINs, tokens, signatures and document content are not "
            "shown.</footer>",
            f"<script>{_JS}</script></body></html>\n",
        ]
    )


# ------------------------------------------------------------------------------------------------- JUnit XML

_XML_INVALID: Final = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(value: object) -> str:
    """Text XML 1.0 can carry (control characters and lone surrogates replaced)."""
    return _XML_INVALID.sub("\ufffd", str(value))


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _timestamp(moment: datetime) -> str:
    """The JUnit timestamp: ISO 8601 without a zone (the schema's), in UTC."""
    return _utc(moment).replace(tzinfo=None).isoformat(timespec="seconds")


def _classname(prefix: str, profile: str) -> str:
    """``<prefix>.<profile>`` with the profile's dots made underscores (``XDS.b`` → ``XDS_b``): CI tools split a
    classname on dots into package and class."""
    return f"{prefix}.{re.sub(r'[^A-Za-z0-9_]+', '_', profile) or 'other'}"


def _step_lines(case: CaseResult) -> str:
    lines = [f"{case.id} {case.title} [{case.outcome.value}]"]
    if case.reference:
        lines.append(f"Reference: {case.reference}")
    if case.actor:
        lines.append(f"Actor: {case.actor}")
    if case.message:
        lines.append(f"Result: {case.message}")
    for evidence in case.setup:
        lines.append(f"setup: {evidence.title} → {evidence.status if evidence.status is not None else 'note'}")
    for step in case.steps:
        lines.append(f"Step {step.number} [{step.outcome.value}] {step.do}")
        lines.append(f"    expect: {step.expect}")
        if step.message:
            lines.append(f"    {'observed' if step.outcome is Outcome.PASSED else 'got'}: {step.message}")
        for evidence in step.evidence:
            status = evidence.status if evidence.status is not None else "note"
            lines.append(f"    exchange: {evidence.title} → {status}")
    return "\n".join(lines) + "\n"


def _problem_text(case: CaseResult) -> str:
    step, why = _why(case)
    if step is None:
        return why + "\n"
    lines = [f"Step {step.number}: {step.do}", f"Expected: {step.expect}", f"Got: {why}"]
    if step.evidence:
        last = step.evidence[-1]
        lines += ["", f"Last exchange: {last.title} → {last.status if last.status is not None else 'note'}"]
        if last.response:
            lines += ["Response:", last.response]
    return "\n".join(lines) + "\n"


def _testcase(parent: etree._Element, case: CaseResult, prefix: str) -> None:
    element = etree.SubElement(
        parent,
        "testcase",
        classname=_x(_classname(prefix, case.profile)),
        name=_x(f"{case.id} {case.title}"),
        time=_seconds(case.seconds),
    )
    why = _headline(case)
    if case.outcome is Outcome.FAILED:
        problem = etree.SubElement(element, "failure", message=_x(why), type="failed")
        problem.text = _x(_problem_text(case))
    elif case.outcome is Outcome.ERROR:
        problem = etree.SubElement(element, "error", message=_x(why), type="error")
        problem.text = _x(_problem_text(case))
    elif case.outcome is Outcome.SKIPPED:
        etree.SubElement(element, "skipped", message=_x(why))
    out = etree.SubElement(element, "system-out")
    out.text = _x(_step_lines(case))


def _counts(cases: list[CaseResult]) -> dict[str, str]:
    return {
        "tests": str(len(cases)),
        "failures": str(sum(1 for c in cases if c.outcome is Outcome.FAILED)),
        "errors": str(sum(1 for c in cases if c.outcome is Outcome.ERROR)),
        "skipped": str(sum(1 for c in cases if c.outcome is Outcome.SKIPPED)),
        "time": _seconds(sum(c.seconds for c in cases)),
    }


def render_junit(result: SuiteResult) -> bytes:
    """``junit.xml`` (UTF-8 bytes with an XML declaration): one ``<testsuite>`` per profile, in the order the
    profiles first appear."""
    words = _wording(result)
    by_profile: dict[str, list[CaseResult]] = {}
    for case in result.cases:
        by_profile.setdefault(case.profile, []).append(case)
    root = etree.Element("testsuites", attrib={"name": _x(result.title or words.heading), **_counts(result.cases)})
    root.set("time", _seconds(result.seconds))  # the run's wall time
    host = _x(socket.gethostname() or "localhost")
    for index, (profile, cases) in enumerate(by_profile.items()):
        attributes = {
            "name": _x(profile),
            **_counts(cases),
            "id": str(index),
            "package": _x(_classname(words.junit_prefix, profile)),
            "timestamp": _timestamp(result.started),
            "hostname": host,
        }
        suite = etree.SubElement(root, "testsuite", attrib=attributes)
        properties = etree.SubElement(suite, "properties")
        for name, value in (
            ("kind", result.kind),
            ("target", result.target),
            ("caller", result.caller),
            ("tool", f"rsb-connector {__version__}"),
        ):
            etree.SubElement(properties, "property", name=name, value=_x(value))
        for note in result.notes:
            etree.SubElement(properties, "property", name="note", value=_x(note))
        for case in cases:
            _testcase(suite, case, words.junit_prefix)
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return data
