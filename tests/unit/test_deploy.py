"""The deploy recipes in deploy/: systemd units, the cron wrapper, the Dockerfile and compose.yaml.

Docker is not available where these tests run: the image is not built; the Dockerfile and the
compose file are parsed and checked against the repository instead.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = [DEPLOY / "systemd" / "pipeline-sync.service", DEPLOY / "systemd" / "pipeline-sync.timer"]
KEYS = {
    "Unit": {"Description", "Wants", "After"},
    "Service": {"Type", "User", "WorkingDirectory", "EnvironmentFile", "ExecStart"},
    "Timer": {"OnCalendar", "Persistent"},
    "Install": {"WantedBy"},
}
IMAGE = "registry.example/pipeline:0.1.0"


def unit_entries(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) of a unit file, refusing anything systemd would misread."""
    section, out = "", []
    for n, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if m := re.fullmatch(r"\[(\w+)\]", line):
            section = m.group(1)
            assert section in KEYS, f"{path.name}:{n}: unknown section [{section}]"
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}:{n}: not Key=Value: {raw!r}"
        assert section, f"{path.name}:{n}: a key before any [Section]: {raw!r}"
        assert key in KEYS[section], f"{path.name}:{n}: {key} is not expected in [{section}]"
        assert not re.search(r"\s[#;]", value), f"{path.name}:{n}: systemd takes no comment after a value"
        out.append((section, key, value))
    return out


def test_systemd_units_parse_strictly() -> None:
    service = {k: v for _, k, v in unit_entries(UNITS[0])}
    timer = {k: v for _, k, v in unit_entries(UNITS[1])}
    for key in ("WorkingDirectory", "EnvironmentFile"):
        assert re.fullmatch(r"/\S+", service[key]), f"{key} must be one absolute path"
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/bin/pipeline")
    build_parser().parse_args(argv[1:])  # the arguments are valid for the CLI (exits 2 otherwise)
    assert (service["Type"], timer["OnCalendar"], timer["WantedBy"]) == (
        "oneshot",
        "*-*-* 02:30:00",
        "timers.target",
    )


def test_the_strict_parser_refuses_an_inline_comment(tmp_path: Path) -> None:
    bad = tmp_path / "bad.service"
    bad.write_text("[Service]\nEnvironmentFile=/etc/pipeline/env          # DATABASE_URL, …\n")
    with pytest.raises(AssertionError, match="no comment after a value"):
        unit_entries(bad)


def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    """verify needs ExecStart to exist: the units are checked with paths of this checkout."""
    assert shutil.which("systemd-analyze"), "verifying deploy/systemd needs systemd-analyze (install systemd)"
    for unit in UNITS:
        text = unit.read_text().replace(
            "/srv/pipeline/.venv/bin/pipeline", str(Path(sys.executable).parent / "pipeline")
        )
        text = text.replace("/srv/pipeline", str(tmp_path)).replace("User=pipeline", "User=root")
        (tmp_path / unit.name).write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / u.name) for u in UNITS)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_operations_doc_shows_the_unit_files_as_they_are() -> None:
    doc = (ROOT / "docs" / "OPERATIONS.md").read_text()
    for path in [*UNITS, DEPLOY / "cron" / "crontab"]:
        assert path.read_text() in doc, f"docs/OPERATIONS.md does not show {path.relative_to(ROOT)} as it is"


def cron_wrapper(tmp_path: Path, code: int) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "fake-pipeline"
    fake.write_text(f"#!/bin/sh\necho \"ran: $*\"\necho 'a log line' >&2\nexit {code}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PIPELINE": str(fake), "PIPELINE_LOG": str(tmp_path / "pipeline.log")}
    return subprocess.run(
        [str(DEPLOY / "cron" / "pipeline-cron"), "sync"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_cron_wrapper_is_silent_on_success_and_prints_the_log_on_failure(tmp_path: Path) -> None:
    ok = cron_wrapper(tmp_path, 0)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")  # cron mails nothing
    failed = cron_wrapper(tmp_path, 1)
    assert failed.returncode == 1
    assert "pipeline sync exited 1" in failed.stdout
    assert "ran: sync --log-json" in failed.stdout
    assert "a log line" in failed.stdout  # what cron mails
    assert (tmp_path / "pipeline.log").read_text().count("ran: sync --log-json") == 2  # both runs logged
    line = (DEPLOY / "cron" / "crontab").read_text().splitlines()[-1]
    assert line.split()[:5] == ["30", "2", "*", "*", "*"]
    assert line.split()[5].endswith("deploy/cron/pipeline-cron")
    assert ">" not in line  # output reaches cron (and MAILTO), not a file


def test_dockerfile_is_slim_non_root_and_copies_what_exists() -> None:
    lines = [
        line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines() if not line.startswith("#")
    ]
    assert any(re.fullmatch(r"FROM python:3\.11-slim\S*", line) for line in lines)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    for line in lines:
        if line.startswith("COPY "):
            source = line.split()[1]
            if source.startswith("dist/"):
                assert source == "dist/pipeline-*.whl"  # the wheel `pip wheel -w dist .` builds
            else:
                assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
    entry = next(line for line in lines if line.startswith("ENTRYPOINT"))
    assert entry == 'ENTRYPOINT ["pipeline"]'


def test_compose_matches_the_kubernetes_example() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert services["db"]["image"].startswith("postgres:1")
    assert services["db"]["image"].split(":")[1] >= "15"
    build = services["migrate"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert services["migrate"]["command"] == ["migrate"]
    assert services["nightly"]["image"] == services["migrate"]["image"] == IMAGE
    script = services["nightly"]["command"][0]
    assert "pipeline sync --log-json" in script
    doc = (ROOT / "docs" / "OPERATIONS.md").read_text()
    [k8s] = [block for block in re.findall(r"```yaml\n(.*?)```", doc, re.S) if "kind: CronJob" in block]
    container = yaml.safe_load(k8s)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE
    assert ["pipeline", *container["args"]] == shlex.split(script.split("\n")[-3].strip().split(" ||")[0])
    assert f"-t {IMAGE} ." in doc  # the documented build command makes the image both name
