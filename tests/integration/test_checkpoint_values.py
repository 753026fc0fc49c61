"""Checkpoint values: committed page sets, cursor caps and lags, monotonic cursors, delete rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.checkpoints import deletes_allowed
from pipeline.streams import PageSet, StreamState, cap_cursor, decode_cursor, encode_cursor, later

START = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def test_page_set_merges_out_of_order_commits_into_ranges() -> None:
    """Pages committed in any order compact to ranges and report the first gap."""
    pages = PageSet()
    for key in (5, 0, 2, 1, 7, 6):
        pages.add(key)
    assert pages.ranges() == [[0, 2], [5, 7]]
    assert (3 in pages, 6 in pages, len(pages), pages.first_missing()) == (False, True, 6, 3)
    assert PageSet(pages.ranges()).ranges() == pages.ranges()


def test_time_cursors_are_capped_at_run_start_and_lagged() -> None:
    """A cursor in the future is capped at the run's start; every time cursor is moved back by the lag."""
    assert cap_cursor(START + timedelta(days=1), START, 300) == START - timedelta(seconds=300)
    assert cap_cursor(START - timedelta(hours=1), START, 60) == START - timedelta(hours=1, seconds=60)
    assert cap_cursor(int(START.timestamp()) + 999, START, 10) == int(START.timestamp()) - 10
    assert cap_cursor("event-uuid", START, 300) == "event-uuid"


def test_cursors_never_move_backwards_and_round_trip() -> None:
    """later() keeps the highest cursor; encode/decode preserve type."""
    assert later(START, START - timedelta(days=1)) == START
    assert later(5, 9) == 9
    for value in (START, 1700000000, 1.5, "abc"):
        assert decode_cursor(*encode_cursor(value)) == value


def test_deletes_need_the_whole_total_and_the_same_identity() -> None:
    """Only a scan that saw its expected total, under the last complete scan's identity, may delete."""
    state = StreamState("s", "r", "full", START, auth="user:a", expected_total=10)
    assert deletes_allowed(state, 10, None)
    assert deletes_allowed(state, 10, "user:a")
    assert not deletes_allowed(state, 9, "user:a")
    assert not deletes_allowed(state, 10, "anonymous")
    state.expected_total = None
    assert not deletes_allowed(state, 10, "user:a")
