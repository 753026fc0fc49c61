"""Every ``pipeline …`` command line that README.md and docs/*.md show, run as written.

Lines are extracted from the documents (fenced blocks, inline code, the Kubernetes ``args:``), so a
new documented command is covered without touching this test. Runnable lines run against a sandbox
(its config is both ``config/sandbox.toml`` in the working folder and ``$PIPELINE_CONFIG``) and a
fresh database; a line holding placeholders (``[--json]``, ``S``, ``…``) is checked with ``--help``
of its command, which must exist.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cli import build_parser
from tests.sandboxproc import sandbox_process

pytestmark = [pytest.mark.db, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMANDS = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
INVOCATION = re.compile(r"""(?:^\s*|(?<=[="'(/]))(?:[\w./-]*/)?pipeline\s+(?=-|[a-z])(.*)$""")
PLACEHOLDER = re.compile(r"[\[\]…|]|(?<!\S)[A-Z]+(?!\S)|\bPATH\b")
# Documented lines whose success depends on state the test cannot have, with what must happen.
EXPECTED_EXIT = {("backfill", "--resume", "12"): (2, "no backfill with id 12")}


def _cut(rest: str) -> str:
    """The command's own words: drop comments, redirections, pipes and ``$(…)`` closers."""
    rest = re.split(r"\s#|\s>>?|\s2>|\s\||\s&&|\)\"|\)$", rest, maxsplit=1)[0]
    return rest.strip().rstrip("`\"'")


def documented_lines() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        fenced = re.findall(r"```[^\n]*\n(.*?)```", text, re.S)
        for block in fenced:
            for line in block.splitlines():
                if (m := INVOCATION.search(line)) and not line.lstrip().startswith("from "):
                    found.append((doc.name, _cut(m.group(1))))
                if m := re.search(
                    r"args:\s*\[(.*)\]", line
                ):  # Kubernetes: the image's entrypoint is pipeline
                    found.append((doc.name, " ".join(a.strip(' "') for a in m.group(1).split(","))))
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        for span in re.findall(r"`([^`\n]+)`", prose):
            if m := INVOCATION.match(span):
                found.append((doc.name, _cut(m.group(1))))
    return [(doc, line) for doc, line in found if line]


def argv_of(line: str) -> list[str]:
    return shlex.split(line)


def command_of(argv: list[str]) -> str:
    skip_value = {"--config", "--log-level"}
    it = iter(argv)
    for word in it:
        if word in skip_value:
            next(it, None)
        elif not word.startswith("-"):
            return word
    raise AssertionError(f"no command in {argv}")


def test_the_docs_show_commands() -> None:
    lines = documented_lines()
    commands = {command_of(argv_of(line)) for _, line in lines if not PLACEHOLDER.search(line)}
    assert {"sync", "backfill", "sandbox", "db"} <= commands, lines


@pytest.fixture(scope="module")
def sandbox_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with sandbox_process(tmp_path_factory.mktemp("docs") / "sandbox.toml", "small", "--fast") as config:
        yield config


def run(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *argv],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def test_every_documented_command_line_works(sandbox_config: Path, db_url: str, tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "sandbox.toml").write_text(sandbox_config.read_text())
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "PIPELINE_CONFIG": str(tmp_path / "config" / "sandbox.toml"),
        "PIPELINE_DATA_DIR": str(tmp_path / "data"),  # `db stop` must not touch a real embedded server
    }
    seen: set[tuple[str, ...]] = set()
    failures = []
    for doc, line in documented_lines():
        argv = argv_of(line)
        command = command_of(argv)
        if command.isupper():  # `pipeline COMMAND --help`: the general help
            command, argv = "--help", ["--help"]
        assert command in COMMANDS | {"--help"}, f"{doc}: `pipeline {line}` names no command"
        if PLACEHOLDER.search(line) and command != "--help":
            argv = [command, "--help"]
        if tuple(argv) in seen:
            continue
        seen.add(tuple(argv))
        written = metrics_target(argv, tmp_path)
        if command == "sandbox" and "--help" not in argv:
            done = run_sandbox(argv, tmp_path, env)
        else:
            done = run(argv, tmp_path, env)
        code, needle = EXPECTED_EXIT.get(tuple(argv), (0, ""))
        if done.returncode != code or needle not in done.stdout + done.stderr:
            failures.append(
                f"{doc}: pipeline {' '.join(argv)} → exit {done.returncode}\n{done.stderr[-2000:]}"
            )
        elif written is not None and "# TYPE pipeline_run_status gauge" not in _read(written):
            failures.append(f"{doc}: pipeline {' '.join(argv)} wrote no metrics file at {written}")
    assert not failures, "\n\n".join(failures)
    assert len(seen) >= 10


def metrics_target(argv: list[str], cwd: Path) -> Path | None:
    """A documented ``--metrics-file`` in a directory of the production machine (node_exporter's
    textfile directory) is written under the test's folder instead: its argument is rewritten in
    place, and the file must then hold the run's metrics."""
    if "--metrics-file" not in argv or "--help" in argv:
        return None
    at = argv.index("--metrics-file") + 1
    documented = Path(argv[at])
    if documented.is_absolute() and not documented.parent.is_dir():
        target = cwd / "textfile" / documented.name
        target.parent.mkdir(exist_ok=True)
        argv[at] = str(target)
    return Path(argv[at]) if Path(argv[at]).is_absolute() else cwd / argv[at]


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def run_sandbox(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``pipeline sandbox …`` serves until stopped: start it (on free ports), see it ready, stop it."""
    config = cwd / "sandbox-from-docs.toml"
    extra = [a for a in argv if a != "sandbox"]
    try:
        with sandbox_process(config, *sandbox_args(extra)):
            ok = config.exists()
    except RuntimeError as exc:
        return subprocess.CompletedProcess(argv, 1, "", str(exc))
    return subprocess.CompletedProcess(argv, 0 if ok else 1, "", "")


def sandbox_args(extra: list[str]) -> list[str]:
    size = extra[extra.index("--size") + 1] if "--size" in extra else "small"
    rest = [a for i, a in enumerate(extra) if a != "--size" and (i == 0 or extra[i - 1] != "--size")]
    return [size, *rest]
