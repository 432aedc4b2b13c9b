"""The command line: ``check``, ``jobs``, ``rule``, ``rules``.

Exit codes are a contract for CI and pre-commit: 0 nothing at or above
``--fail-on``, 1 findings, 2 a usage, configuration or internal error.
What only some commands need is imported by them: a warm ``check`` (a stored
result printed again) imports neither the rules nor the analysis.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from jobaudit import __version__, baseline, diffmode
from jobaudit.codes import UNUSED_NOQA
from jobaudit.config import FAIL_ON_LEVELS, Config, ConfigError, load_config
from jobaudit.engine import run, split_targets, stored, walk
from jobaudit.report import json_report, text
from jobaudit.report.common import plural
from jobaudit.result import Result
from jobaudit.selection import known_codes, rules_of, select_rules, selected_codes

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
LEVEL_RANK = {level: rank for rank, level in enumerate(FAIL_ON_LEVELS)}


def _selected(
    config: Config,
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    preview: bool | None,
    fail_on: str | None = None,
) -> Config:
    """The configuration with the command line's rule selection on top (ruff's precedence:
    --select replaces, --extend-select and --ignore add)."""
    overrides: dict[str, object] = {}
    if select:
        overrides["select"] = _codes(select)
    if extend_select:
        overrides["extend_select"] = config.extend_select + _codes(extend_select)
    if ignore:
        overrides["ignore"] = config.ignore + _codes(ignore)
    if preview is not None:
        overrides["preview"] = preview
    if fail_on is not None:
        overrides["fail_on"] = fail_on
    return config.with_overrides(**overrides) if overrides else config


def _codes(values: Sequence[str]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        out.extend(part.strip().upper() for part in value.split(",") if part.strip())
    return tuple(out)


def _scan_root(paths: Sequence[Path], config: Config) -> Config:
    """Without a config file, paths are shown relative to the scanned directory."""
    if config.source is not None or not paths:
        return config
    cwd = Path.cwd().resolve()
    resolved = [p.resolve() for p in paths]
    if all(p == cwd or cwd in p.parents for p in resolved):
        return config
    common = Path(os.path.commonpath([str(p) for p in resolved]))
    if common.is_file():
        common = common.parent
    return config.with_overrides(root=common)


def _load(paths: Sequence[Path], config_file: Path | None) -> Config:
    try:
        config = load_config(paths, config_file, known_codes())
    except ConfigError as exc:
        click.echo(f"jobaudit: error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    return _scan_root(paths, config)


def _write(output: Path | None, content: str) -> None:
    """Write to stdout, or atomically to ``output`` (an interrupted run leaves the old file)."""
    if output is None:
        click.echo(content, nl=False)
        return
    directory = output.resolve().parent
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{output.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        # mkstemp creates 0600; a report is as readable as any file the user writes.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _print_notices(result: Result, quiet: bool) -> None:
    for line in text.notices(result):
        if quiet and "internal error" not in line:
            continue
        click.echo(line, err=True)


config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read configuration from this file instead of searching for one.",
)
paths_argument = click.argument(
    "paths", nargs=-1, type=click.Path(exists=True, path_type=Path)
)


def speed_options(command: Callable[..., None]) -> Callable[..., None]:
    """``-j``, ``--no-cache``, ``--cache-dir``, ``--timings``, and the advanced ``--no-prefilter``.

    docs/performance.md says what they trade.
    """
    options = [
        click.option(
            "--jobs",
            "-j",
            "workers",
            type=click.IntRange(min=0),
            default=1,
            show_default=True,
            help="Parse in N processes (0: one per CPU).",
        ),
        click.option("--no-cache", is_flag=True, help="Neither read nor write .jobaudit_cache."),
        click.option(
            "--cache-dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="Keep the cache in DIR instead of .jobaudit_cache at the project root.",
        ),
        click.option("--timings", is_flag=True, help="Print the time of each phase on stderr."),
        click.option("--no-prefilter", is_flag=True, hidden=True, help="Parse every file."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _run(
    paths: Sequence[Path],
    config: Config,
    codes: Sequence[str],
    report: Sequence[Path] | None,
    speed: dict[str, object],
    reuse: bool = False,
) -> Result:
    """``engine.run`` of the rules of ``codes`` with the speed options; ``--timings`` prints
    each phase on stderr.

    ``reuse``: the caller prints only findings and notices, so a stored result
    of the same inputs will do (:mod:`jobaudit.reuse`); the rules are not even
    imported then."""
    from jobaudit.cache import CACHE_DIR, Cache

    directory = speed["cache_dir"] or Path(config.root) / CACHE_DIR
    cache = None if speed["no_cache"] else Cache(Path(str(directory)), config)
    prefilter = not speed["no_prefilter"]
    walked = walk(paths, config, codes, report, prefilter=prefilter, cache=cache, reuse=reuse)
    result = stored(walked, cache) if cache is not None else None
    if result is None:
        from jobaudit.parallel import worker_count

        workers = speed["workers"]
        result = run(
            paths,
            config,
            rules_of(codes),
            report,
            prefilter=prefilter,
            cache=cache,
            jobs=worker_count(workers if isinstance(workers, int) else 1),
            reuse=reuse,
            walked=walked,
        )
    if speed["timings"]:
        total = sum(result.timings.values())
        for phase, seconds in result.timings.items():
            click.echo(f"{phase:<16} {seconds:7.3f} s  {seconds / (total or 1):6.1%}", err=True)
        parsed = f"({result.parsed} of {result.files} files parsed)"
        click.echo(f"{'total':<16} {total:7.3f} s  {parsed}", err=True)
    return result


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="jobaudit")
def main() -> None:
    """Static analysis of background jobs: retries, timeouts, idempotency, error handling."""


@main.command()
@paths_argument
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "sarif", "github"]),
    default="text",
    show_default=True,
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report to FILE.",
)
@click.option(
    "--sarif-category",
    metavar="NAME",
    help="Write runs[0].automationDetails.id = 'NAME/' (the code scanning category).",
)
@click.option(
    "--select", multiple=True, help="Rule codes or prefixes to run (replaces the default set)."
)
@click.option("--extend-select", multiple=True, help="Rule codes or prefixes to run in addition.")
@click.option("--ignore", multiple=True, help="Rule codes or prefixes not to run.")
@click.option("--preview/--no-preview", default=None, help="Also run rules in preview.")
@click.option(
    "--fail-on",
    type=click.Choice(FAIL_ON_LEVELS),
    default=None,
    help="Lowest level that fails the run [default: warning].",
)
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@click.option(
    "--show-unused-noqa",
    is_flag=True,
    help="Also report # noqa comments that suppress nothing (rule JOB901).",
)
@click.option(
    "--baseline",
    "baseline_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Report only findings not recorded in this baseline FILE.",
)
@click.option(
    "--write-baseline",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Record the current findings in FILE (JSON) and exit 0.",
)
@click.option(
    "--diff",
    "diff_ref",
    metavar="REF",
    help="Report only findings on lines changed since the git REF (and untracked files).",
)
@click.option("--statistics", is_flag=True, help="Count findings per rule.")
@click.option("--show-source", is_flag=True, help="Print the source line of each finding.")
@click.option("--fix", "apply_fixes", is_flag=True, help="Apply fixes, then report what is left.")
@click.option("--unsafe-fixes", is_flag=True, help="With --fix: also apply unsafe fixes.")
@click.option("--show-fixes", is_flag=True, help="With --fix: list the fixes applied.")
@click.option("--quiet", "-q", is_flag=True, help="Print findings only, no notices or summary.")
@click.option(
    "--color/--no-color",
    default=None,
    help="Colour the output [default: on a terminal, unless NO_COLOR].",
)
@config_option
@speed_options
def check(
    paths: tuple[Path, ...],
    fmt: str,
    output: Path | None,
    sarif_category: str | None,
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    preview: bool | None,
    fail_on: str | None,
    exit_zero: bool,
    show_unused_noqa: bool,
    baseline_file: Path | None,
    write_baseline: Path | None,
    diff_ref: str | None,
    statistics: bool,
    show_source: bool,
    apply_fixes: bool,
    unsafe_fixes: bool,
    show_fixes: bool,
    quiet: bool,
    color: bool | None,
    config_file: Path | None,
    **speed: object,
) -> None:
    """Report problems in the background jobs under PATHS (default: the current directory)."""
    targets = list(paths) or [Path(".")]
    if show_unused_noqa:
        extend_select = (*extend_select, UNUSED_NOQA)
    config = _load(targets, config_file)
    config = _selected(config, select, extend_select, ignore, preview, fail_on)
    _check_codes(config)
    codes = selected_codes(config.select, config.ignore, config.extend_select, config.preview)
    context, report = split_targets(targets, config)
    if apply_fixes and write_baseline is None:
        from jobaudit.fix.command import fix_files

        narrow = _fix_narrow(report, baseline_file, diff_ref, config.root)
        result, _ = fix_files(
            context,
            config,
            rules_of(codes),
            report,
            unsafe=unsafe_fixes,
            diff=False,
            show_fixes=show_fixes,
            quiet=quiet,
            narrow=narrow,
        )
    else:
        reuse = diff_ref is None and fmt != "sarif"  # SARIF carries the readiness summary
        result = _run(context, config, codes, report, speed, reuse=reuse)
    result = _narrow(result, report, write_baseline, baseline_file, diff_ref, quiet)
    if fmt == "json":
        _write(output, json_report.render(result))
    elif fmt == "sarif":
        from jobaudit.report import sarif

        _write(output, sarif.render(result, sarif_category))
    elif fmt == "github":
        from jobaudit.report import github

        _write(output, github.render(result))
    else:
        use_color = _color(color) and output is None
        rendered = text.render(
            result, use_color, statistics, show_source, hints=not quiet and not apply_fixes
        )
        if quiet:
            rendered = "".join(line + "\n" for line in rendered.splitlines()[:-1] if line)
        _write(output, rendered)
    _print_notices(result, quiet)
    sys.exit(_exit_code(result, config.fail_on, exit_zero))


def _narrow(
    result: Result,
    report: Sequence[Path] | None,
    write_baseline: Path | None,
    baseline_file: Path | None,
    diff_ref: str | None,
    quiet: bool,
) -> Result:
    """Apply ``--write-baseline`` (which ends the run), ``--baseline`` and ``--diff``."""
    if write_baseline is not None:
        count = baseline.write(result, write_baseline)
        _print_notices(result, quiet)
        click.echo(f"jobaudit: recorded {plural(count, 'finding')} in {write_baseline}", err=True)
        sys.exit(EXIT_ERROR if result.internal_errors else EXIT_CLEAN)
    try:
        if baseline_file is not None:
            applied = baseline.apply(result, baseline_file, report)
            result = applied.result
            if not quiet and (applied.baselined or applied.stale):
                click.echo(_baseline_line(applied, baseline_file), err=True)
        if diff_ref is not None:
            result, hidden = diffmode.only_changed(result, diffmode.changes(diff_ref, result.root))
            if not quiet and hidden:
                unchanged = plural(hidden, "finding")
                click.echo(f"jobaudit: {unchanged} on lines unchanged since {diff_ref}", err=True)
    except (baseline.BaselineError, diffmode.DiffError) as exc:
        click.echo(f"jobaudit: error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    return result


def _fix_narrow(
    report: Sequence[Path] | None, baseline_file: Path | None, diff_ref: str | None, root: Path
) -> Callable[[Result], Result]:
    """What each fix round leaves alone: baselined findings, and lines unchanged since REF."""
    try:
        changes = diffmode.changes(diff_ref, root) if diff_ref is not None else None
    except diffmode.DiffError as exc:
        click.echo(f"jobaudit: error: {exc}", err=True)
        sys.exit(EXIT_ERROR)

    def narrow(result: Result) -> Result:
        try:
            if baseline_file is not None:
                result = baseline.apply(result, baseline_file, report).result
        except baseline.BaselineError as exc:
            click.echo(f"jobaudit: error: {exc}", err=True)
            sys.exit(EXIT_ERROR)
        if changes is not None:
            result = diffmode.only_changed(result, changes)[0]
        return result

    return narrow


def _baseline_line(applied: baseline.Applied, file: Path) -> str:
    line = f"jobaudit: {plural(applied.baselined, 'finding')} in the baseline {file} not shown"
    if applied.stale:
        entries = f"{applied.stale} baseline {'entry' if applied.stale == 1 else 'entries'}"
        line += f"; {entries} no longer found (rewrite it with --write-baseline)"
    return line


def _check_codes(config: Config) -> None:
    codes = known_codes()
    for selector in (*(config.select or ()), *config.extend_select, *config.ignore):
        family = re.fullmatch(r"JOB[0-9]?", selector) is not None
        if not family and not any(code.startswith(selector) for code in codes):
            click.echo(f"jobaudit: error: unknown rule selector '{selector}'", err=True)
            sys.exit(EXIT_ERROR)


def _color(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    if os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


def _exit_code(result: Result, fail_on: str, exit_zero: bool) -> int:
    if result.internal_errors:
        return EXIT_ERROR
    if exit_zero:
        return EXIT_CLEAN
    threshold = LEVEL_RANK[fail_on]
    failing = [f for f in result.findings if LEVEL_RANK[f.level] <= threshold]
    return EXIT_FINDINGS if failing else EXIT_CLEAN


@main.command("fix")
@paths_argument
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff; write nothing.")
@click.option("--unsafe-fixes", is_flag=True, help="Also apply fixes that choose a value.")
@click.option("--show-fixes", is_flag=True, help="List each fix applied.")
@click.option(
    "--select", multiple=True, help="Rule codes or prefixes to fix (replaces the default set)."
)
@click.option("--extend-select", multiple=True, help="Rule codes or prefixes to fix in addition.")
@click.option("--ignore", multiple=True, help="Rule codes or prefixes not to fix.")
@click.option("--preview/--no-preview", default=None, help="Also fix rules in preview.")
@click.option(
    "--baseline",
    "baseline_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Leave the findings recorded in this baseline FILE alone.",
)
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when findings remain.")
@click.option("--quiet", "-q", is_flag=True, help="Print remaining findings only.")
@config_option
def fix_command(
    paths: tuple[Path, ...],
    show_diff: bool,
    unsafe_fixes: bool,
    show_fixes: bool,
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    preview: bool | None,
    baseline_file: Path | None,
    exit_zero: bool,
    quiet: bool,
    config_file: Path | None,
) -> None:
    """Fix the findings under PATHS that have a fix, then report what is left.

    Exits 0 when nothing is left at or above --fail-on, 1 when findings
    remain; with --diff, 1 when there is something to fix, 0 otherwise.
    """
    from jobaudit.fix.command import fix_files

    targets = list(paths) or [Path(".")]
    config = _load(targets, config_file)
    config = _selected(config, select, extend_select, ignore, preview)
    _check_codes(config)
    rules = select_rules(config.select, config.ignore, config.extend_select, config.preview)
    context, report = split_targets(targets, config)
    result, outcome = fix_files(
        context,
        config,
        rules,
        report,
        unsafe=unsafe_fixes,
        diff=show_diff,
        show_fixes=show_fixes,
        quiet=quiet,
        narrow=_fix_narrow(report, baseline_file, None, config.root),
    )
    result = _narrow(result, report, None, baseline_file, None, quiet=True)
    if show_diff:
        _print_notices(result, quiet)
        sys.exit(EXIT_ERROR if result.internal_errors else int(bool(outcome.fixed)))
    rendered = text.render(result, _color(None), fixed=len(outcome.applied), hints=not quiet)
    if quiet:
        rendered = "".join(line + "\n" for line in rendered.splitlines()[:-1] if line)
    click.echo(rendered, nl=False)
    _print_notices(result, quiet)
    sys.exit(_exit_code(result, config.fail_on, exit_zero))


@main.command()
@paths_argument
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the inventory to FILE.",
)
@config_option
@speed_options
def jobs(
    paths: tuple[Path, ...],
    fmt: str,
    output: Path | None,
    config_file: Path | None,
    **speed: object,
) -> None:
    """List every job under PATHS with its framework and effective policy."""
    from jobaudit.report.jobs import render_json, render_text

    targets = list(paths) or [Path(".")]
    config = _load(targets, config_file)
    result = _run(targets, config, [], None, speed)
    _write(output, render_json(result.jobs) if fmt == "json" else render_text(result.jobs))
    _print_notices(result, quiet=False)
    sys.exit(EXIT_ERROR if result.internal_errors else EXIT_CLEAN)


@main.command()
@paths_argument
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json", "html"]),
    default="text",
    show_default=True,
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report to FILE.",
)
@click.option("--verbose", "-v", is_flag=True, help="Text format: print every job's full entry.")
@config_option
@speed_options
def report(
    paths: tuple[Path, ...],
    fmt: str,
    output: Path | None,
    verbose: bool,
    config_file: Path | None,
    **speed: object,
) -> None:
    """Is each job under PATHS production-ready? Gates per job, worst first (docs/readiness.md).

    Exits 0 whatever the gates say (it is a report; `check` is the gate for CI),
    2 on a usage, configuration or internal error.
    """
    from jobaudit.report import (
        readiness,
        readiness_html,
        readiness_json,
        readiness_markdown,
        readiness_text,
    )

    renderers: dict[str, Callable[[readiness.Readiness], str]] = {
        "text": lambda built: readiness_text.render(built, verbose),
        "markdown": readiness_markdown.render,
        "json": readiness_json.render,
        "html": readiness_html.render,
    }
    targets = list(paths) or [Path(".")]
    config = _load(targets, config_file)
    codes = selected_codes(config.select, config.ignore, config.extend_select, config.preview)
    built = readiness.build(_run(targets, config, codes, None, speed))
    _write(output, renderers[fmt](built))
    _print_notices(built.result, quiet=False)
    sys.exit(EXIT_ERROR if built.result.internal_errors else EXIT_CLEAN)


@main.command()
@paths_argument
@config_option
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The cache directory, when it is not .jobaudit_cache at the project root.",
)
def clean(paths: tuple[Path, ...], config_file: Path | None, cache_dir: Path | None) -> None:
    """Remove the .jobaudit_cache directory of the project under PATHS."""
    from jobaudit.cache import CACHE_DIR
    from jobaudit.cache import clean as remove

    targets = list(paths) or [Path(".")]
    directory = cache_dir or Path(_load(targets, config_file).root) / CACHE_DIR
    click.echo(f"{'Removed' if remove(directory) else 'No cache at'} {directory}")


@main.command()
@click.argument("key")
def rule(key: str) -> None:
    """Show the documentation of a rule, by code (JOB301) or name (unbounded-retries)."""
    from jobaudit.checks import rule_by_key
    from jobaudit.docs import rule_page

    found = rule_by_key(key)
    if found is None:
        click.echo(f"jobaudit: error: no rule '{key}'; run 'jobaudit rules' for the list", err=True)
        sys.exit(EXIT_ERROR)
    click.echo(rule_page(found))


@main.command()
def rules() -> None:
    """List every rule with its level and whether it runs by default."""
    from jobaudit.checks import ALL_RULES

    width = max(len(r.name) for r in ALL_RULES)
    for found in ALL_RULES:
        default = "preview" if found.preview else "on"
        click.echo(
            f"{found.code}  {found.name:<{width}}  {found.level:<7}  {default:<7}  {found.summary}"
        )
