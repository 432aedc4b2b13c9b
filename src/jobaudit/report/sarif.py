"""``--format sarif``: a SARIF 2.1.0 log shaped for GitHub code scanning.

The decisions behind the shape (docs/integrations.md):

* exactly one run per log — upload-sarif refuses several runs of one
  tool and category;
* URIs relative to the repository root with ``uriBaseId`` ``%SRCROOT%``, the
  same whatever folder jobaudit runs from, so alerts keep their identity;
* columns in UTF-16 code units, declared by ``columnKind``, converted from the
  UTF-8 byte offsets ast gives;
* an explicit ``level`` on every result, ``results: []`` when clean, no
  ``security-severity`` (these are reliability findings), no
  ``automationDetails`` unless asked for (it would override the user's
  ``category:``), no ``primaryLocationLineHash`` (upload-sarif computes it);
* findings silenced by ``# noqa`` or a baseline are not in the log at all,
  because GitHub ignores SARIF suppressions;
* files that could not be analysed are tool notifications, not results.

The objects are sarif-om's; ``plain`` turns them into JSON data.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attr
import sarif_om as om

from jobaudit import __version__
from jobaudit.checks import rule_by_key
from jobaudit.checks.base import Finding, Rule
from jobaudit.docs import rule_page
from jobaudit.model import Location
from jobaudit.notices import Notice
from jobaudit.report import readiness
from jobaudit.result import Result

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/jobaudit/jobaudit"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "jobaudit/v1"
"""Our own partial fingerprint; versioned so its recipe can change without clashing."""
MAX_RESULTS = 25_000
"""GitHub rejects a run with more results."""
MAX_DESCRIPTION = 1024
"""GitHub's limit on ``shortDescription`` and ``fullDescription``."""
PROBLEM_SEVERITY = {"error": "error", "warning": "warning", "note": "recommendation"}
LEVEL_ORDER = {"error": 0, "warning": 1, "note": 2}


# -- paths --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepoPaths:
    """Paths as GitHub sees them: relative to the repository root, not the scan root.

    ``jobaudit check src/`` run from a subfolder reports ``src/...`` relative
    to its config root; code scanning needs ``sub/src/...`` or every alert
    would move.  Without a repository, the scan root is the root.
    """

    root: Path
    scan_root: Path

    @classmethod
    def find(cls, scan_root: Path) -> RepoPaths:
        scan_root = Path(os.path.realpath(scan_root))
        for candidate in (scan_root, *scan_root.parents):
            if (candidate / ".git").exists():
                return cls(candidate, scan_root)
        return cls(scan_root, scan_root)

    def relative(self, path: str) -> str:
        """The POSIX path of a finding's file relative to the repository root."""
        absolute = Path(os.path.realpath(self.scan_root / path))
        try:
            return absolute.relative_to(self.root).as_posix()
        except ValueError:
            return Path(path).as_posix()

    def uri(self, path: str) -> str:
        return quote(self.relative(path), safe="/")

    @property
    def root_uri(self) -> str:
        return self.root.as_uri().rstrip("/") + "/"


# -- columns and code ---------------------------------------------------------------------


def utf16_column(line: str, byte_column: int) -> int:
    """The 1-based UTF-16 column (``columnKind: utf16CodeUnits``) of an ast byte offset."""
    prefix = line.encode("utf-8", "surrogatepass")[:byte_column].decode("utf-8", "ignore")
    return len(prefix.encode("utf-16-le", "surrogatepass")) // 2 + 1


def region_text(lines: Sequence[str], span: tuple[int, int, int, int]) -> str:
    """The source text a span covers (byte offsets, as ast gives them)."""
    line, column, end_line, end_column = span
    if not 0 < line <= len(lines):
        return ""
    chosen = [text.encode("utf-8", "surrogatepass") for text in lines[line - 1 : end_line]]
    if len(chosen) == 1:
        stop = end_column if end_column > column else len(chosen[0])
        picked = chosen[0][column:stop]
    else:
        picked = b"\n".join([chosen[0][column:], *chosen[1:-1], chosen[-1][:end_column]])
    return picked.decode("utf-8", "ignore")


def fingerprints(result: Result, paths: RepoPaths, findings: Iterable[Finding]) -> list[str]:
    """``jobaudit/v1`` per finding: rule, repository path, job and the normalised code.

    No line number goes in, so adding lines above a finding keeps its
    fingerprint, and whitespace is dropped from the code, so reformatting does
    too; a ``:n`` suffix tells identical findings in one file apart.
    """
    seen: Counter[str] = Counter()
    out = []
    for finding in findings:
        code = "".join(region_text(_lines(result, finding.path), finding.location.span).split())
        key = "\0".join((finding.code, paths.relative(finding.path), finding.job or "", code))
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        seen[digest] += 1
        out.append(f"{digest}:{seen[digest]}")
    return out


def _lines(result: Result, path: str) -> Sequence[str]:
    return result.lines(path)


# -- building ------------------------------------------------------------------------------


def build(result: Result, category: str | None = None) -> dict[str, Any]:
    """The SARIF log of a run, as JSON data."""
    paths = RepoPaths.find(result.root)
    rules = _rules(result)
    index = {rule.code: position for position, rule in enumerate(rules)}
    findings = sorted(result.findings, key=lambda f: LEVEL_ORDER.get(f.level, 3))[:MAX_RESULTS]
    findings.sort()
    notifications = [_notification(result, paths, notice) for notice in result.notices]
    if len(result.findings) > MAX_RESULTS:
        dropped = len(result.findings) - MAX_RESULTS
        notifications.append(
            om.Notification(
                level="warning",
                message=om.Message(
                    text=f"{dropped} lower-level results were left out: GitHub accepts at most "
                    f"{MAX_RESULTS} results per run."
                ),
            )
        )
    results = [
        _result(result, paths, finding, index[finding.code], fingerprint)
        for finding, fingerprint in zip(
            findings, fingerprints(result, paths, findings), strict=True
        )
    ]
    run = om.Run(
        tool=om.Tool(
            driver=om.ToolComponent(
                name="jobaudit",
                version=__version__,
                semantic_version=__version__,
                information_uri=INFORMATION_URI,
                rules=[_descriptor(rule) for rule in rules],
            )
        ),
        invocations=[
            om.Invocation(
                execution_successful=not result.internal_errors,
                tool_execution_notifications=notifications,
            )
        ],
        original_uri_base_ids={SRCROOT: om.ArtifactLocation(uri=paths.root_uri)},
        results=results,
        column_kind="utf16CodeUnits",
        automation_details=om.RunAutomationDetails(id=_category(category)) if category else None,
        properties={"readiness": readiness.summary_document(readiness.build(result))},
    )
    data: dict[str, Any] = plain(om.SarifLog(version="2.1.0", schema_uri=SCHEMA_URI, runs=[run]))
    # $schema and version first, as readers and other tools expect to see them
    return {"$schema": data["$schema"], "version": data["version"], "runs": data["runs"]}


def render(result: Result, category: str | None = None) -> str:
    return json.dumps(build(result, category), indent=2, ensure_ascii=False) + "\n"


def _category(category: str) -> str:
    """``NAME/``: GitHub takes the text up to the last ``/`` as the category."""
    return category if category.endswith("/") else f"{category}/"


def _rules(result: Result) -> list[Rule]:
    """The rules that ran, plus any a finding names that did not (so every ``ruleId`` resolves)."""
    rules = list(result.rules)
    codes = {rule.code for rule in rules}
    for finding in result.findings:
        if finding.code not in codes:
            found = rule_by_key(finding.code)
            if found is not None:
                rules.append(found())
                codes.add(finding.code)
    return rules


def _descriptor(rule: Rule) -> om.ReportingDescriptor:
    page = rule_page(type(rule))
    tags = list(dict.fromkeys(("reliability", *filter(None, (rule.gate,)), *rule.frameworks)))
    return om.ReportingDescriptor(
        id=rule.code,
        name=rule.name,
        short_description=om.MultiformatMessageString(text=_clip(rule.summary)),
        full_description=om.MultiformatMessageString(
            text=_clip(_what_it_does(page) or rule.summary)
        ),
        help=om.MultiformatMessageString(text=page, markdown=page),
        help_uri=f"{INFORMATION_URI}/blob/main/rules/{rule.code}-{rule.name}.md",
        default_configuration=om.ReportingConfiguration(level=rule.level),
        properties={
            "tags": tags[:20],
            # Rules must stay under 5 % false positives to be on by default;
            # preview rules have not proven that yet.
            "precision": "medium" if rule.preview else "high",
            "problem.severity": PROBLEM_SEVERITY[rule.level],
        },
    )


def _what_it_does(page: str) -> str:
    """The first paragraph of the page's ``## What it does`` section, as one line."""
    match = re.search(r"^## What it does\s*\n+(.+?)(?:\n\s*\n|\n#|\Z)", page, re.M | re.S)
    return " ".join(match.group(1).split()) if match else ""


def _clip(text: str) -> str:
    if len(text) <= MAX_DESCRIPTION:
        return text
    return text[: MAX_DESCRIPTION - 1].rsplit(" ", 1)[0] + "…"


def _result(
    result: Result, paths: RepoPaths, finding: Finding, rule_index: int, fingerprint: str
) -> om.Result:
    related = [
        om.Location(
            id=number,
            message=om.Message(text=item.message),
            physical_location=_physical(result, paths, item.location),
        )
        for number, item in enumerate(finding.related, start=1)
    ]
    return om.Result(
        rule_id=finding.code,
        rule_index=rule_index,
        level=finding.level,
        message=om.Message(text=_message(finding)),
        locations=[om.Location(physical_location=_physical(result, paths, finding.location))],
        related_locations=related or None,
        partial_fingerprints={FINGERPRINT_KEY: fingerprint},
    )


def _message(finding: Finding) -> str:
    """The finding's message; related places become embedded links after the first sentence.

    With links present, literal brackets must be escaped (SARIF §3.11.6).
    """
    if not finding.related:
        return finding.message
    links = "; ".join(
        f"[{_escape(item.message)}]({number})"
        for number, item in enumerate(finding.related, start=1)
    )
    return f"{_escape(finding.message.rstrip('.'))}. See {links}."


def _escape(text: str) -> str:
    return re.sub(r"([\\\[\]])", r"\\\1", text)


def _physical(result: Result, paths: RepoPaths, location: Location) -> om.PhysicalLocation:
    lines = _lines(result, location.path)
    line, column, end_line, end_column = location.span
    line = max(line, 1)
    end_line = max(end_line, line)

    def text(number: int) -> str:
        return lines[number - 1] if 0 < number <= len(lines) else ""

    start = utf16_column(text(line), column)
    end = utf16_column(text(end_line), end_column)
    if end_line == line and end <= start:
        # An empty or unknown end: the region runs to the end of the line, written
        # out because GitHub wants all four region properties.
        end = max(start, utf16_column(text(line), len(text(line).encode("utf-8", "surrogatepass"))))
    region = om.Region(start_line=line, start_column=start, end_line=end_line, end_column=end)
    return om.PhysicalLocation(
        artifact_location=om.ArtifactLocation(uri=paths.uri(location.path), uri_base_id=SRCROOT),
        region=region,
    )


def _notification(result: Result, paths: RepoPaths, notice: Notice) -> om.Notification:
    """A file jobaudit could not analyse: a warning; a failure of jobaudit itself: an error."""
    failed = notice in result.internal_errors
    where = f"{notice.path}: " if notice.path else ""
    locations = None
    if notice.path:
        region = om.Region(start_line=notice.line) if notice.line else None
        locations = [
            om.Location(
                physical_location=om.PhysicalLocation(
                    artifact_location=om.ArtifactLocation(
                        uri=paths.uri(notice.path), uri_base_id=SRCROOT
                    ),
                    region=region,
                )
            )
        ]
    return om.Notification(
        level="error" if failed else "warning",
        message=om.Message(text=f"{where}{notice.reason}"),
        locations=locations,
    )


# -- serialising -----------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """sarif-om objects as JSON data, under their schema property names.

    A property is left out when it is ``None`` or equal to its schema default
    (``kind: "fail"``, ``rank: -1``...) — except ``level``: a result without
    one takes its rule's default level, so it is always written.
    """
    if attr.has(type(value)):
        out: dict[str, Any] = {}
        for field in attr.fields(type(value)):
            item = getattr(value, field.name)
            if item is None or (field.name != "level" and item == _default(field)):
                continue
            out[field.metadata["schema_property_name"]] = plain(item)
        return out
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def _default(field: Any) -> Any:
    default = field.default
    if isinstance(default, attr.Factory):  # type: ignore[arg-type]
        return default.factory()
    return None if default is attr.NOTHING else default
