"""What `pipeline status` and the run summary show: readable cursors, `--json` as data, the wait named."""

from __future__ import annotations

from pipeline.commands import cursor_data, cursor_summary
from pipeline.sources.zou_log import EventCursor

ZOU = EventCursor(
    at="2026-11-30T22:14:05", event_id="5b1c0f2e-0000-4000-8000-000000000001",
    recent=frozenset(f"5b1c0f2e-0000-4000-8000-0000000000{n:02d}" for n in range(12)),
).encode()  # fmt: skip


def test_an_anilist_epoch_cursor_is_an_iso_time() -> None:
    assert cursor_data("1764540845", "epoch") == "2025-11-30T22:14:05+00:00"
    assert cursor_summary("1764540845", "epoch") == "2025-11-30T22:14:05+00:00"


def test_a_timestamp_cursor_is_an_iso_time_in_utc() -> None:
    assert cursor_data("2026-11-30T22:14:05.123456+00:00", "timestamp") == "2026-11-30T22:14:05+00:00"
    assert cursor_data("2026-11-30T22:14:05", "timestamp") == "2026-11-30T22:14:05+00:00"


def test_the_zou_watermark_is_an_object_in_json_and_one_short_line_in_the_table() -> None:
    data = cursor_data(ZOU, "opaque")
    assert isinstance(data, dict)
    assert data["at"] == "2026-11-30T22:14:05"
    assert len(data["recent"]) == 12
    assert cursor_summary(ZOU, "opaque") == "events to 2026-11-30T22:14:05 (+12 in overlap)"
    empty = EventCursor().encode()
    assert cursor_summary(empty, "opaque") == "events to start (+0 in overlap)"


def test_other_cursors_are_shown_as_stored_and_cut_to_the_column() -> None:
    assert cursor_data(None, None) is None
    assert cursor_summary(None, None) is None
    assert cursor_data("page-42", "opaque") == "page-42"
    long = "x" * 100
    assert cursor_summary(long, "opaque") == "x" * 39 + "…"
    assert cursor_data("not a number", "epoch") == "not a number"  # wrong kind: as stored
    assert cursor_data("{not json", "opaque") == "{not json"


def test_the_summary_names_the_limiter_wait_as_summed_over_workers() -> None:
    """Four requests in flight wait in parallel: 4 × 2 s of wait in a 2.5 s stream is no contradiction
    once the column says whose wait it is."""
    from pipeline.api import RunResult, StreamSummary
    from pipeline.commands import STREAM_COLUMNS, render_summary, stream_row

    fields = dict.fromkeys(StreamSummary.__dataclass_fields__, 0)
    fields.update(source="kitsu", resource="anime", mode="full", status="succeeded", error=None)
    fields.update(limiter_wait_seconds=8.0, duration_seconds=2.5)
    row = dict(zip(STREAM_COLUMNS, stream_row(StreamSummary(**fields)), strict=True))
    assert (row["worker wait s"], row["seconds"]) == (8.0, 2.5)
    run = dict.fromkeys(RunResult.__dataclass_fields__)
    run.update(run_id=1, command="sync", status="succeeded", streams=(StreamSummary(**fields),))
    assert "worker wait s" in render_summary(RunResult(**run))


def test_counts_are_the_main_tables_rows_and_other_tables_are_apart() -> None:
    """An anime page inserts 3 media and brings 2 new studios and 7 link rows: "inserted 3", and
    the studios and links are other rows; summed batches settle the same way."""
    from pipeline.load.counts import LoadCounts, TableChange

    batch = LoadCounts(links_written=7)
    batch.change("catalog.media").add(TableChange(inserted=3))
    batch.change("catalog.companies").add(TableChange(inserted=2, unchanged=4))
    batch.settle({"catalog.media"})
    assert (batch.inserted, batch.updated, batch.unchanged, batch.other_rows) == (3, 0, 0, 9)
    again = LoadCounts()
    again.change("catalog.media").add(TableChange(updated=1, unchanged=2))
    again.settle({"catalog.media"})
    total = LoadCounts()
    total.add(batch)
    total.add(again)
    assert (total.inserted, total.updated, total.unchanged, total.other_rows) == (3, 1, 2, 9)
    total.settle(None)  # no main tables known: every table counts
    assert (total.inserted, total.updated, total.unchanged, total.other_rows) == (5, 1, 6, 7)
