"""``--metrics-file``: the Prometheus text a run leaves for node_exporter's textfile collector.

Parsed with ``prometheus_client``'s own parser: every family has HELP and TYPE gauge, every stream
has exactly one series per figure, values match the run's summary, the file is written for failed,
aborted and unstartable runs too, and it is replaced atomically (no temporary file left, no
half-written file ever under the final name).
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline import api, metrics
from pipeline.errors import ConfigError, DatabaseError
from pipeline.runs import StreamResult
from tests.integration import loadkit
from tests.integration.loadkit import FakeStream, factory, item, page_doc

pytestmark = pytest.mark.db

STREAM_FIGURES = [f"pipeline_{f.name}" for f in metrics.STREAM_FIGURES] + [
    "pipeline_stream_status",
    "pipeline_stream_ok",
    "pipeline_stream_last_success_timestamp_seconds",
    "pipeline_stream_lag_seconds",
]
# The figures the operations guide promises, by the names a dashboard queries.
PROMISED = {
    "pipeline_stream_records_inserted",
    "pipeline_stream_records_updated",
    "pipeline_stream_records_unchanged",
    "pipeline_stream_records_deleted",
    "pipeline_stream_records_rejected",
    "pipeline_stream_requests",
    "pipeline_stream_rate_limited_responses",
    "pipeline_stream_retries",
    "pipeline_stream_duration_seconds",
    "pipeline_stream_status",
    "pipeline_stream_last_success_timestamp_seconds",
    "pipeline_stream_lag_seconds",
}


def parse(path: Path) -> dict[str, Any]:
    """Family name → family; asserts the textfile collector's rules (HELP, TYPE gauge, no timestamps)."""
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name, family in families.items():
        assert family.type == "gauge", name
        assert family.documentation, name
        assert f"# HELP {name} " in text
        assert f"# TYPE {name} gauge" in text
        for sample in family.samples:
            assert sample.timestamp is None, sample
    return families


def series(families: dict[str, Any], name: str) -> dict[tuple[str, str], Any]:
    """(source, stream) → the sample; asserts one sample per stream."""
    out: dict[tuple[str, str], Any] = {}
    for sample in families[name].samples:
        key = (sample.labels["source"], sample.labels["stream"])
        assert key not in out, f"{name} has two series for {key}"
        out[key] = sample
    return out


def test_render_gives_one_series_per_stream_and_figure() -> None:
    """Two streams: every figure once per stream, labelled command/source/stream, values as given."""
    figures = {
        "inserted": 3,
        "updated": 2,
        "unchanged": 5,
        "other_rows": 6,
        "deleted": 1,
        "rejected": 4,
        "requests": 9,
    }
    a = StreamResult(
        "kitsu",
        "anime",
        "full",
        status="succeeded",
        retries=2,
        rate_limited=1,
        duration_seconds=1.5,
        **figures,
    )
    b = StreamResult("zou", "tasks", "incremental", status="deferred", requests=1)
    now = 1_800_000_000.0
    text = metrics.render(
        "sync",
        run_id=7,
        status="partial",
        exit_code=1,
        streams=[a, b],
        last_success={("kitsu", "anime"): None, ("zou", "tasks"): None},
        finished_at=now,
    )
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(families) >= PROMISED
    for name in STREAM_FIGURES:
        per = series(families, name)
        assert set(per) == {("kitsu", "anime"), ("zou", "tasks")}, name
        assert all(s.labels["command"] == "sync" for s in per.values())
    kitsu = {name: series(families, name)[("kitsu", "anime")].value for name in STREAM_FIGURES}
    assert kitsu["pipeline_stream_records_inserted"] == 3
    assert kitsu["pipeline_stream_records_unchanged"] == 5
    assert kitsu["pipeline_stream_other_rows_written"] == 6
    assert kitsu["pipeline_stream_records_deleted"] == 1
    assert kitsu["pipeline_stream_rate_limited_responses"] == 1
    assert kitsu["pipeline_stream_duration_seconds"] == 1.5
    assert kitsu["pipeline_stream_last_success_timestamp_seconds"] == 0  # never
    assert math.isinf(kitsu["pipeline_stream_lag_seconds"])
    status = series(families, "pipeline_stream_status")
    assert status[("zou", "tasks")].labels["status"] == "deferred"
    assert series(families, "pipeline_stream_ok")[("zou", "tasks")].value == 0
    (run,) = families["pipeline_run_status"].samples
    assert (run.labels, run.value) == ({"command": "sync", "status": "partial"}, 1)
    assert families["pipeline_run_exit_code"].samples[0].value == 1
    assert families["pipeline_run_finished_timestamp_seconds"].samples[0].value == now


def test_label_values_are_escaped() -> None:
    odd = StreamResult('we"ird\\src', "line\nbreak", "full", status="failed")
    text = metrics.render("sync", run_id=1, status="failed", exit_code=1, streams=[odd])
    families = {f.name: f for f in text_string_to_metric_families(text)}
    (sample,) = families["pipeline_stream_requests"].samples
    assert (sample.labels["source"], sample.labels["stream"]) == ('we"ird\\src', "line\nbreak")


def test_write_is_atomic_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old file stays whole until the rename; a failed write leaves it and no temporary file."""
    target = tmp_path / "pipeline.prom"
    metrics.write_atomically(target, "# old\n")
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    seen_during_write: list[str] = []
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        seen_during_write.append(Path(dst).read_text())  # what a scrape would read just before
        assert not str(src).endswith(".prom")  # the collector reads *.prom only
        assert Path(src).parent == Path(dst).parent  # same directory: rename is atomic
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    metrics.write_atomically(target, "# new\n")
    assert seen_during_write == ["# old\n"]
    assert target.read_text() == "# new\n"
    assert len(synced) >= 2  # the file, then the directory
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # readable by node_exporter's user
    monkeypatch.setattr(os, "replace", lambda src, dst: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        metrics.write_atomically(target, "# newer\n")
    assert target.read_text() == "# new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipeline.prom"]


def test_a_missing_directory_is_refused_before_the_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        metrics.check_path(tmp_path / "nowhere" / "pipeline.prom")
    with pytest.raises(ConfigError, match="is a directory"):
        metrics.check_path(tmp_path)


# ------------------------------------------------------------------------------------- from runs


@pytest.fixture
def fake_tables(db_url: str) -> str:
    async def create() -> None:
        import asyncpg

        conn = await asyncpg.connect(db_url)
        try:
            await loadkit.create_tables(conn)
        finally:
            await conn.close()

    asyncio.run(create())
    return db_url


def two_sources() -> Any:
    one = loadkit.settings("fake")
    two = loadkit.settings("other")
    return one.model_copy(update={"sources": {**one.sources, **two.sources}})


def fake(name: str, pages: int, **kw: Any) -> FakeStream:
    docs = [page_doc([item(n) for n in range(p * 4, p * 4 + 4)], pages * 4) for p in range(pages)]
    return FakeStream(two_sources().sources[name], docs, **kw)


def run_sync(
    db_url: str, target: Path, streams: dict[str, FakeStream], monkeypatch: pytest.MonkeyPatch, **kw: Any
) -> api.RunResult:
    monkeypatch.setattr(api.sources, "build_stream", factory(streams))
    return api.sync(settings=two_sources(), database_url=db_url, metrics_file=target, log_level=None, **kw)


def test_sync_writes_every_stream_also_the_failed_one(
    fake_tables: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One stream succeeds, one fails mid-way: both in the file, figures equal to the summary."""
    target = tmp_path / "pipeline.prom"
    before = time.time()
    result = run_sync(
        fake_tables, target, {"fake": fake("fake", 3), "other": fake("other", 3, fail_after=1)}, monkeypatch
    )
    assert (result.status, result.exit_code) == ("partial", 1)
    families = parse(target)
    for name in STREAM_FIGURES:
        assert set(series(families, name)) == {("fake", "shows"), ("other", "shows")}, name
    by = {s.source: s for s in result.streams}
    for figure in metrics.STREAM_FIGURES:
        per = series(families, f"pipeline_{figure.name}")
        for source in ("fake", "other"):
            assert per[(source, "shows")].value == pytest.approx(getattr(by[source], figure.attribute))
    status = series(families, "pipeline_stream_status")
    assert status[("other", "shows")].labels["status"] == "failed"
    success = series(families, "pipeline_stream_last_success_timestamp_seconds")
    assert before - 1 <= success[("fake", "shows")].value <= time.time() + 1
    assert success[("other", "shows")].value == 0  # never succeeded
    lag = series(families, "pipeline_stream_lag_seconds")
    assert 0 <= lag[("fake", "shows")].value < 60
    assert math.isinf(lag[("other", "shows")].value)
    assert families["pipeline_run_id"].samples[0].value == result.run_id
    assert families["pipeline_run_status"].samples[0].labels["status"] == "partial"

    # The next run: the failed stream now succeeds; its last success moves, the other keeps its own.
    first_success = success[("fake", "shows")].value
    again = run_sync(fake_tables, target, {"fake": fake("fake", 3), "other": fake("other", 3)}, monkeypatch)
    assert again.exit_code == 0
    families = parse(target)
    success = series(families, "pipeline_stream_last_success_timestamp_seconds")
    assert success[("other", "shows")].value >= first_success
    assert families["pipeline_run_exit_code"].samples[0].value == 0


def test_deferred_and_sampled_streams_are_written(
    fake_tables: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.errors import DeferredError

    def defer(n: int) -> None:
        if n == 1:
            raise DeferredError("server asked for a wait of 3600 s beyond max_wait_seconds")

    target = tmp_path / "pipeline.prom"
    result = run_sync(
        fake_tables, target, {"fake": fake("fake", 3), "other": fake("other", 3, on_page=defer)}, monkeypatch,
        max_pages=2,
    )  # fmt: skip
    assert {s.source: s.status for s in result.streams} == {"fake": "sampled", "other": "deferred"}
    status = series(parse(target), "pipeline_stream_status")
    assert {k[0]: s.labels["status"] for k, s in status.items()} == {"fake": "sampled", "other": "deferred"}
    # a sample is no successful sync: never succeeded yet
    success = series(parse(target), "pipeline_stream_last_success_timestamp_seconds")
    assert success[("fake", "shows")].value == 0


def test_a_run_that_cannot_start_writes_the_error(tmp_path: Path) -> None:
    """Database unreachable: exit 2 and a file with run_status{status="error"}, no stream series."""
    target = tmp_path / "pipeline.prom"
    with pytest.raises(DatabaseError):
        api.sync(
            settings=loadkit.settings(),
            database_url="postgresql://nobody@127.0.0.1:9/none",
            metrics_file=target,
            log_level=None,
        )
    families = parse(target)
    assert families["pipeline_run_status"].samples[0].labels == {"command": "sync", "status": "error"}
    assert families["pipeline_run_exit_code"].samples[0].value == 2
    assert "pipeline_stream_requests" not in families


def test_replay_and_backfill_write_their_own_command(
    fake_tables: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two files in one collector directory never collide: each series carries its command."""
    run_sync(
        fake_tables, tmp_path / "sync.prom", {"fake": fake("fake", 2), "other": fake("other", 1)}, monkeypatch
    )
    monkeypatch.setattr(api.sources, "build_stream", factory({"fake": fake("fake", 2)}))
    api.backfill(
        settings=two_sources(), source="fake", full=True, database_url=fake_tables,
        metrics_file=tmp_path / "backfill.prom", log_level=None,
    )  # fmt: skip
    api.replay(
        settings=two_sources(),
        database_url=fake_tables,
        metrics_file=tmp_path / "replay.prom",
        log_level=None,
    )
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for name in ("sync", "backfill", "replay"):
        families = parse(tmp_path / f"{name}.prom")
        for family in families.values():
            for sample in family.samples:
                assert sample.labels["command"] == name
                key = (sample.name, tuple(sorted(sample.labels.items())))
                assert key not in seen
                seen.add(key)
        assert series(families, "pipeline_stream_requests")


async def test_cli_sync_stopped_by_sigterm_writes_aborted(db_url: str, tmp_path: Path) -> None:
    """`pipeline sync --metrics-file` against the Nekos simulator (1 request a second), SIGTERM after
    the first commit: exit 143, and the file says aborted with the stream's figures so far."""
    import asyncpg

    from pipeline.sandbox.server import start_sandbox, write_config

    target = tmp_path / "pipeline.prom"
    async with await start_sandbox("small", services=("nekos",)) as sandbox:
        config = write_config(sandbox, tmp_path / "nekos.toml")
        command = [sys.executable, "-m", "pipeline", "--config", str(config), "sync", "--no-progress",
                   "--metrics-file", str(target)]  # fmt: skip
        env = {**os.environ, "DATABASE_URL": db_url}
        child = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        conn = await asyncpg.connect(db_url)
        try:
            for _ in range(600):  # at most 60 s for the first commit
                if child.returncode is not None:
                    break
                if await conn.fetchval("SELECT to_regclass('raw.records') IS NOT NULL") and (
                    await conn.fetchval("SELECT count(*) FROM raw.records")
                ):
                    break
                await asyncio.sleep(0.1)
        finally:
            await conn.close()
        assert child.returncode is None, "the sync ended before it could be signalled"
        child.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(child.communicate(), timeout=60)
    assert child.returncode == 143, stderr.decode()[-3000:]
    families = parse(target)
    assert families["pipeline_run_status"].samples[0].labels == {"command": "sync", "status": "aborted"}
    assert families["pipeline_run_exit_code"].samples[0].value == 143
    statuses = series(families, "pipeline_stream_status")
    assert "aborted" in {s.labels["status"] for s in statuses.values()}
    pages = series(families, "pipeline_stream_pages")
    assert sum(s.value for s in pages.values()) >= 1
