"""The documentation stays true to the code: README.md, docs/ and bench/README.md.

Every relative link reaches a file, and every #anchor a heading of it. Every `contact-sync …`
named is a command of the parser. Every setting named exists, and every setting is in
docs/reference/settings.md. The HTTP reference lists the app's routes, the log events reference
the events the service logs, and the metrics reference its metrics: no more, no fewer. The
README keeps the test command CI runs. Pure: no database, no process."""

from __future__ import annotations

import argparse
import ast
import itertools
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from starlette.routing import Mount

ROOT = Path(__file__).resolve().parents[1]
SERVICE = ROOT / "service"
REFERENCE = ROOT / "docs" / "reference"


def doc_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# --- reading Markdown -------------------------------------------------------------------------

_FENCE = re.compile(r"^(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def prose_and_code(text: str) -> tuple[str, list[str]]:
    """The text outside fenced code blocks (code spans left in), and the code: each fenced block's
    lines and each code span's content."""
    prose, code, fenced = [], [], False
    for line in text.splitlines():
        if _FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if fenced:
            code.append(line)
        else:
            prose.append(line)
            code += [span.group(2) for span in _CODE_SPAN.finditer(line)]
    return "\n".join(prose), code


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lower-cased, punctuation but '-' and '_' dropped,
    spaces made '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in `path`, repeated ones numbered as GitHub numbers them."""
    prose, _ = prose_and_code(path.read_text())
    seen: dict[str, int] = {}
    found = set()
    for line in prose.splitlines():
        if match := re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line):
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def links(path: Path) -> Iterator[str]:
    """The targets of `path`'s Markdown links, outside code."""
    prose, _ = prose_and_code(path.read_text())
    yield from (m.group(1) for m in _LINK.finditer(_CODE_SPAN.sub("", prose)))


def broken_links(path: Path) -> list[str]:
    problems = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not ours to check
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            problems.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            problems.append(f"{target}: no heading #{anchor} in {_name(linked)}")
    return problems


def table_rows(path: Path, marker: str) -> list[list[str]]:
    """The cells of each row of the first table from the line `marker` on (a heading, or the
    table's own header), its header and rule left out."""
    lines = path.read_text().splitlines()
    rows: list[list[str]] = []
    for line in lines[lines.index(marker) :]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
        elif rows:
            break
    return rows[2:]


# --- links --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", doc_files(), ids=_name)
def test_every_relative_link_reaches_a_file_and_a_heading(path: Path) -> None:
    assert broken_links(path) == []


def test_a_broken_link_or_anchor_is_caught(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## Its part: one\n\n```\n# not a heading\n```\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[fine](other.md#its-part-one) [gone](missing.md) [no such part](other.md#not-a-heading)\n"
        "`[in code](missing.md)` [outside](https://example.com/x)\n"
    )
    assert broken_links(page) == [
        "missing.md: no such file",
        f"other.md#not-a-heading: no heading #not-a-heading in {tmp_path / 'other.md'}",
    ]


def test_github_slugs() -> None:
    assert (
        slug("Way 2: Airtable's native webhook (no automation)")
        == "way-2-airtables-native-webhook-no-automation"
    )
    assert slug("No `typecast`, ever") == "no-typecast-ever"
    assert slug("1. The two tables") == "1-the-two-tables"
    assert slug("JOB_LEASE_S and [links](x.md)") == "job_lease_s-and-links"


def test_the_readme_keeps_the_command_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    blocks = re.findall(r"^```sh\n(.*?)\n```$", readme.split("## Two commands", 1)[1], re.M | re.S)
    assert blocks[1] in [line.replace("pip install -q ", "pip install ") for line in ci.splitlines()]


# --- commands -----------------------------------------------------------------------------------


@cache
def command_tree() -> dict[str, list[set[str]]]:
    """Each command of the parser, with the words each level below it accepts: a subparser's
    names (one level), or the choices of its positional arguments in order (`airtable webhook
    create`). Read from the parser itself, as `contact-sync` builds it."""
    from service.commands.cli import COMMANDS, _parser

    def levels(parser: argparse.ArgumentParser) -> list[set[str]]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                below = [levels(sub) for sub in action.choices.values()]
                # Actions of different depths (`airtable resume`, `airtable webhook create`).
                deeper = [set().union(*words) for words in itertools.zip_longest(*below, fillvalue=set())]
                return [set(action.choices), *deeper]
        return [set(a.choices) for a in parser._actions if not a.option_strings and a.choices]  # type: ignore[arg-type]

    tree = {}
    for name in COMMANDS:
        parser = _parser([name])
        (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        tree[name] = levels(commands.choices[name])
    return tree


_WORD = re.compile(r"[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)*")


def wrong_commands(code: str) -> list[str]:
    """Each `contact-sync …` in `code` whose words the parser would not take."""
    wrong = []
    for match in re.finditer(r"(?<![\w-])contact-sync((?:[ \t]+\S+)*)", code):
        words = []
        for token in match.group(1).replace("\\|", "|").split():
            if not _WORD.fullmatch(token):
                break  # an option, a placeholder, a comment, `&&`: the command's words end
            words.append(token)
        if not words:
            continue
        tree = command_tree()
        said = "contact-sync " + " ".join(words)
        if words[0] not in tree:
            wrong.append(said)
            continue
        levels = tree[words[0]]
        if len(words) > 1 and not levels:  # a command without subcommands
            wrong.append(said)
            continue
        for word, accepted in zip(words[1:], levels, strict=False):
            if not set(word.split("|")) <= accepted:
                wrong.append(said)
                break
    return wrong


def test_the_command_tree_is_read_from_the_parser() -> None:
    tree = command_tree()
    assert {"serve", "worker", "jobs", "airtable", "contacts"} <= set(tree)
    assert tree["jobs"][0] == {"list", "show", "retry"}
    assert {"webhook", "adopt"} <= tree["airtable"][0] and "recreate" in tree["airtable"][1]
    assert tree["serve"] == []


@pytest.mark.parametrize("path", doc_files(), ids=_name)
def test_every_command_named_is_a_command(path: Path) -> None:
    _, code = prose_and_code(path.read_text())
    assert [wrong for line in code for wrong in wrong_commands(line)] == []


def test_a_command_that_does_not_exist_is_caught() -> None:
    assert wrong_commands("contact-sync jobs list --status failed") == []
    assert wrong_commands("contact-sync airtable webhook refresh\\|recreate\\|delete [ID]") == []
    assert wrong_commands(".venv/bin/contact-sync demo && .venv/bin/contact-sync serve") == []
    assert wrong_commands("contact-sync sync now") == ["contact-sync sync now"]
    assert wrong_commands("contact-sync jobs purge") == ["contact-sync jobs purge"]
    assert wrong_commands("contact-sync airtable status|wipe") == ["contact-sync airtable status|wipe"]
    assert wrong_commands("contact-sync serve now") == ["contact-sync serve now"]


# --- settings -----------------------------------------------------------------------------------


@cache
def settings_variables() -> frozenset[str]:
    """Every variable `load_settings` reads, recorded as it reads them."""
    from starlette.config import Config

    import service.config

    read: set[str] = set()

    class Recording(Config):
        def get(self, key: str, *args: object, **kwargs: object) -> object:
            read.add(key)
            return super().get(key, *args, **kwargs)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(service.config, "Config", Recording)
        service.config.load_settings(environ={}, env_file=None)
    return frozenset(read)


@cache
def script_constants() -> frozenset[str]:
    """The automation script's own constants (`WEBHOOK_SECRET`, …): named in the docs, not settings."""
    script = (ROOT / "airtable" / "automation.js").read_text()
    return frozenset(re.findall(r"^const ([A-Z][A-Z0-9_]*) =", script, re.M))


_UPPER_SNAKE = re.compile(r"(?<![\w$])([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(_\*|_…)?(?![\w])")


def unknown_settings(text: str) -> list[str]:
    """The names in `text` that look like settings (UPPER_SNAKE, starting as a setting does) but
    are none; `AIRTABLE_FIELD_*` stands for the settings it starts."""
    variables = settings_variables()
    prefixes = {name.split("_")[0] for name in variables}
    unknown = []
    for match in _UPPER_SNAKE.finditer(text):
        name, wildcard = match.groups()
        if name.split("_")[0] not in prefixes or name in script_constants():
            continue
        if wildcard:
            if not any(v.startswith(name + "_") for v in variables):
                unknown.append(name + wildcard)
        elif name not in variables:
            unknown.append(name)
    return unknown


def test_settings_are_read_from_the_code() -> None:
    names = settings_variables()
    assert {"DATABASE_URL", "PORT", "ATTESTR_CONSENT_FIELD", "AIRTABLE_FIELD_SYNC_NOTE"} <= names
    assert "WEBHOOK_SECRET" in script_constants() and "WEBHOOK_SECRET" not in names


@pytest.mark.parametrize("path", doc_files(), ids=_name)
def test_every_setting_named_exists(path: Path) -> None:
    assert unknown_settings(path.read_text()) == []


def test_every_setting_is_in_the_settings_reference() -> None:
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]*)`", (REFERENCE / "settings.md").read_text()))
    assert sorted(settings_variables() - documented) == []


def test_a_setting_that_does_not_exist_is_caught() -> None:
    text = (
        "Set `JOB_LEASE_S`, `AIRTABLE_FIELD_*`, `WEBHOOK_SECRET`; not `JOB_LEASE_SECONDS`, `ATTESTR_NOPE_*`."
    )
    assert unknown_settings(text) == ["JOB_LEASE_SECONDS", "ATTESTR_NOPE_*"]
    assert unknown_settings("UNKNOWN_FIELD_NAME, LIVE_ATTESTR_CIN, RATE_LIMIT_REACHED") == []


# --- HTTP ---------------------------------------------------------------------------------------

_ENDPOINT = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`?\s]*)[^`]*`")


def _path(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


@cache
def routes() -> frozenset[tuple[str, str]]:
    """Every (method, path) the app answers, from the app the service builds."""
    from service.config import Settings
    from service.web.app import create_app

    app = create_app(Settings(), "postgresql://localhost/unused")

    def each(routes: list, prefix: str = "") -> Iterator[tuple[str, str]]:
        for route in routes:
            if isinstance(route, Mount):  # the operator's page: its own routes, each listed
                yield from each(route.routes, prefix + route.path)
                continue
            for method in (getattr(route, "methods", None) or {"GET"}) - {"HEAD"}:
                yield method, _path(prefix + route.path)

    return frozenset(each(app.routes))


def endpoints(text: str) -> set[tuple[str, str]]:
    return {(method, _path(path)) for method, path in _ENDPOINT.findall(text)}


def test_the_http_reference_lists_every_route_and_no_other() -> None:
    listed = {
        endpoint
        for row in table_rows(REFERENCE / "http.md", "## Endpoints")
        for endpoint in endpoints(row[0])
    }
    assert sorted(listed - routes()) == []
    assert sorted(routes() - listed) == []


@pytest.mark.parametrize("path", doc_files(), ids=_name)
def test_every_endpoint_named_exists(path: Path) -> None:
    assert sorted(endpoints(path.read_text()) - routes()) == []


def test_an_endpoint_that_does_not_exist_is_caught() -> None:
    assert endpoints("`GET /jobs/{id}` and `POST /companies/{record_id}/sync?wait=S`") <= routes()
    assert endpoints("`DELETE /jobs/{id}`, `GET /contacts`") - routes() == {
        ("DELETE", "/jobs/{}"),
        ("GET", "/contacts"),
    }


# --- log events ---------------------------------------------------------------------------------

_EVENT = re.compile(r"[a-z]+\.[a-z_]+")
_LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}
_FILE_KINDS = {"py", "sql", "md", "js", "mjs", "json", "toml", "sh"}  # `contacts.py` is a file


@cache
def logged_events() -> frozenset[str]:
    """The events the service logs: a literal first argument of `log.info(…)` and its kind."""
    events = set()
    for path in SERVICE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _LEVELS
                and node.args
                and isinstance(first := node.args[0], ast.Constant)
                and isinstance(first.value, str)
                and _EVENT.fullmatch(first.value)
            ):
                events.add(first.value)
    return frozenset(events)


@cache
def quoted_in_service() -> str:
    return "\n".join(path.read_text() for path in SERVICE.rglob("*.py"))


def reference_events() -> set[str]:
    rows = table_rows(REFERENCE / "log-events.md", "| event | level | fields | what to do |")
    return {event for row in rows for event in re.findall(r"`([a-z]+\.[a-z_]+)`", row[0])}


def test_the_log_events_reference_lists_every_event_logged_and_no_other() -> None:
    documented = reference_events()
    assert len(logged_events()) > 50
    assert sorted(e for e in documented if f'"{e}"' not in quoted_in_service()) == []
    assert sorted(logged_events() - documented) == []


def unknown_events(code: list[str]) -> list[str]:
    """Code spans that name an event (a namespace the service logs under) the service never logs."""
    namespaces = {event.split(".")[0] for event in logged_events()}
    return [
        span
        for span in code
        if _EVENT.fullmatch(span)
        and span.split(".")[0] in namespaces
        and span.split(".")[1] not in _FILE_KINDS
        and span not in logged_events()
    ]


@pytest.mark.parametrize("path", doc_files(), ids=_name)
def test_every_event_named_is_logged(path: Path) -> None:
    _, code = prose_and_code(path.read_text())
    assert unknown_events(code) == []


def test_an_event_that_is_not_logged_is_caught() -> None:
    assert unknown_events(["job.failed", "contacts.py", "job.exploded"]) == ["job.exploded"]


# --- metrics ------------------------------------------------------------------------------------


def test_the_metrics_reference_lists_every_metric_and_no_other() -> None:
    tree = ast.parse((SERVICE / "metrics.py").read_text())
    defined = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in {"Counter", "Gauge", "Histogram", "Summary"}
        and isinstance(node.args[0], ast.Constant)
    }
    rows = table_rows(REFERENCE / "metrics.md", "| metric | type | labels |")
    documented = {row[0].strip("`") for row in rows}
    assert len(defined) > 10
    assert sorted(documented ^ defined) == []
