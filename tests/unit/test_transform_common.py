"""Normalisation rules shared by the catalogue transforms (DESIGN §4)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from pipeline.errors import SkippableRecordError
from pipeline.transform import common as c


def _pd(value: date, precision: str) -> c.PartialDate:
    return c.PartialDate(value, precision)


def test_kitsu_iso_dates_are_day_precise() -> None:
    """``YYYY-MM-DD`` is a day-precise date; null and empty are no date."""
    assert c.iso_date("1999-10-20", "startDate") == _pd(date(1999, 10, 20), "day")
    assert c.iso_date(None, "startDate") is None
    assert c.iso_date("", "startDate") is None


def test_iso_datetimes_keep_the_sources_calendar_date() -> None:
    """Old v1 ISO datetimes keep the date as written in their own offset."""
    assert c.iso_date("1998-04-03T21:00:00+09:00", "start_date") == _pd(date(1998, 4, 3), "day")


def test_partial_iso_dates_lower_the_precision() -> None:
    """``YYYY-MM`` and ``YYYY`` are month and year precise, never an invented day."""
    assert c.iso_date("2017-07", "d") == _pd(date(2017, 7, 1), "month")
    assert c.iso_date("2017", "d") == _pd(date(2017, 1, 1), "year")


@pytest.mark.parametrize("value", ["20-10-1999", "1999-02-30", "tomorrow", 19991020])
def test_bad_iso_dates_are_rejected_with_the_field(value: object) -> None:
    """A malformed or impossible date rejects the record, naming field and value."""
    with pytest.raises(SkippableRecordError, match="startDate"):
        c.iso_date(value, "startDate")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (20170722, _pd(date(2017, 7, 22), "day")),
        (20170700, _pd(date(2017, 7, 1), "month")),
        (20170000, _pd(date(2017, 1, 1), "year")),
        ("20070215", _pd(date(2007, 2, 15), "day")),
        (0, None),
        (None, None),
    ],
)
def test_v1_fuzzy_dates_use_zero_for_unknown_parts(value: object, expected: c.PartialDate | None) -> None:
    """``YYYYMMDD`` with ``00`` parts gives month/year precision; 0 or null is no date."""
    assert c.fuzzy_int_date(value, "start_date_fuzzy") == expected


@pytest.mark.parametrize("value", [2017072, 20171301, 20170231, 20170015, "2017-07-22", True])
def test_bad_v1_fuzzy_dates_are_rejected(value: object) -> None:
    """Wrong length, impossible month/day or a day without its month is a contract break."""
    with pytest.raises(SkippableRecordError, match="start_date_fuzzy"):
        c.fuzzy_int_date(value, "start_date_fuzzy")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"year": 2009, "month": 4, "day": 5}, _pd(date(2009, 4, 5), "day")),
        ({"year": 2009, "month": None, "day": None}, _pd(date(2009, 1, 1), "year")),
        ({"year": 2009, "month": 4, "day": None}, _pd(date(2009, 4, 1), "month")),
        ({"year": 2009, "month": None, "day": 5}, _pd(date(2009, 1, 1), "year")),
        ({"year": None, "month": 4, "day": 5}, None),
        (None, None),
    ],
)
def test_v2_fuzzy_dates_with_nulls(value: object, expected: c.PartialDate | None) -> None:
    """``{year, month, day}``: precision follows the known parts; no year means no date."""
    assert c.fuzzy_date(value, "startDate") == expected


@pytest.mark.parametrize(
    ("month", "season"),
    [
        (1, ("winter", 2017)),
        (2, ("winter", 2017)),
        (3, ("spring", 2017)),
        (5, ("spring", 2017)),
        (6, ("summer", 2017)),
        (8, ("summer", 2017)),
        (9, ("fall", 2017)),
        (11, ("fall", 2017)),
        (12, ("winter", 2018)),
    ],
)
def test_season_from_a_month_precise_date(month: int, season: tuple[str, int]) -> None:
    """Dec-Feb winter, Mar-May spring, Jun-Aug summer, Sep-Nov fall; December is next year's winter."""
    assert c.season_from_date(_pd(date(2017, month, 1), "month")) == season


def test_no_season_without_a_known_month() -> None:
    """A year-precise date or no date gives no season."""
    assert c.season_from_date(_pd(date(2017, 1, 1), "year")) is None
    assert c.season_from_date(None) is None


def test_v1_season_codes() -> None:
    """173 = summer 2017, 164 = fall 2016, 181 = winter 2018, 41 = winter 2004; 0/None = none."""
    assert c.season_from_code(173, "season", None) == ("summer", 2017)
    assert c.season_from_code("164", "season", None) == ("fall", 2016)
    assert c.season_from_code(41, "season", None) == ("winter", 2004)
    assert c.season_from_code(181, "season", None) == ("winter", 2018)
    assert c.season_from_code(0, "season", None) is None
    assert c.season_from_code(None, "season", None) is None


def test_v1_season_century_follows_the_start_date() -> None:
    """Two-digit years take the century that puts the season next to the start year."""
    start_1998 = _pd(date(1998, 4, 3), "day")
    assert c.season_from_code(982, "season", start_1998) == ("spring", 1998)
    assert c.season_from_code(984, "season", None) == ("fall", 1998)
    assert c.season_from_code(444, "season", _pd(date(1944, 10, 1), "month")) == ("fall", 1944)
    assert c.season_from_code(444, "season", None) == ("fall", 1944)


@pytest.mark.parametrize("value", [175, 170, "summer", 1234])
def test_bad_v1_season_codes_are_rejected(value: object) -> None:
    """A last digit outside 1-4 or a non-code value is a contract break."""
    with pytest.raises(SkippableRecordError, match="season"):
        c.season_from_code(value, "season", None)


def test_scores_land_on_one_scale() -> None:
    """Kitsu strings, v1 strings and numbers, v2 ints all become 0-100 decimals."""
    assert c.score("82.28", "averageRating") == Decimal("82.28")
    assert c.score("86.8", "average_score") == Decimal("86.80")
    assert c.score(59.7, "average_score") == Decimal("59.70")
    assert c.score(90, "averageScore") == Decimal("90.00")
    assert c.score(None, "averageScore") is None


def test_v1_zero_score_means_no_score_yet() -> None:
    """``0`` is "not scored" only where the source says so."""
    assert c.score(0, "average_score", zero_is_missing=True) is None
    assert c.score("0", "average_score", zero_is_missing=True) is None
    assert c.score(0, "averageScore") == Decimal("0.00")


@pytest.mark.parametrize("value", ["high", "101", -1, True, "NaN"])
def test_bad_scores_are_rejected(value: object) -> None:
    """Out of range or non-numeric scores reject the record."""
    with pytest.raises(SkippableRecordError, match="score"):
        c.score(value, "average_score")


def test_counts_treat_zero_as_unknown_but_numbers_keep_zero() -> None:
    """Counts: 0 → None; integers (episode numbers) keep 0; tallies keep 0."""
    assert c.count(0, "total_episodes") is None
    assert c.count(26, "total_episodes") == 26
    assert c.count("12", "episodeCount") == 12
    assert c.integer(0, "number") == 0
    assert c.non_negative(0, "userCount") == 0
    with pytest.raises(SkippableRecordError, match="userCount"):
        c.non_negative(-3, "userCount")
    with pytest.raises(SkippableRecordError, match="episodes"):
        c.count("many", "episodes")


def test_display_title_falls_back_over_missing_and_empty() -> None:
    """The first non-empty candidate wins; empty strings count as missing."""
    assert c.first_text(c.text("", "en"), None, "Haikyuu!!", "x") == "Haikyuu!!"
    assert c.first_text(None, None) is None


def test_v1_copies_of_the_romaji_title_become_null() -> None:
    """An English/Japanese title equal to the romaji is v1's filler, stored as None."""
    assert c.not_a_copy("Nisekoi", "Nisekoi") is None
    assert c.not_a_copy("Prison School", "Kangoku Gakuen") == "Prison School"
    assert c.not_a_copy(None, "Kangoku Gakuen") is None


def test_plain_text_strips_tags_and_keeps_paragraphs() -> None:
    """``<br>`` → newline, tags removed, entities decoded, at most one blank line, no stray ``<`` eaten."""
    raw = "A &amp; B.\n<br><br>\n<i>Italic</i> text, 3 < 4 > 2.<br/>End &quot;x&quot;  "
    assert c.plain_text(raw, "description") == 'A & B.\n\nItalic text, 3 < 4 > 2.\nEnd "x"'
    assert c.plain_text("   ", "description") is None
    assert c.plain_text("<br><br>", "description") is None


def test_slugs_compare_genres_across_sources() -> None:
    """Genre names become lower-case dashed slugs."""
    assert c.slugify("Sci-Fi") == "sci-fi"
    assert c.slugify("Mahou Shoujo") == "mahou-shoujo"
    assert c.slugify(" Slice of Life ") == "slice-of-life"


def test_timestamps_from_iso_and_epoch_are_aware() -> None:
    """ISO strings with Z and unix seconds both become aware UTC datetimes."""
    assert c.timestamp("2023-04-28T12:00:04.037Z", "updatedAt") == datetime(
        2023, 4, 28, 12, 0, 4, 37000, tzinfo=UTC
    )
    assert c.timestamp(1511801686, "updated_at") == datetime(2017, 11, 27, 16, 54, 46, tzinfo=UTC)


def test_unknown_vocabulary_is_stored_as_unknown_and_reported_once() -> None:
    """An unmapped value maps to ``unknown`` and is collected once per block, nothing outside one."""
    mapping = {"tv": "tv"}
    with c.collect_unknown() as seen:
        assert c.vocabulary("TV", mapping, "test.format") == "tv"
        assert c.vocabulary("hologram-x1", mapping, "test.format") == "unknown"
        assert c.vocabulary("hologram-x1", mapping, "test.format") == "unknown"
        assert c.vocabulary(None, mapping, "test.format") is None
    assert seen == [("test.format", "hologram-x1")]
    assert c.vocabulary("hologram-x2", mapping, "test.format") == "unknown"  # no block: nothing kept
    with c.collect_unknown() as later:  # a new block starts empty: earlier unknowns do not leak in
        assert c.vocabulary("TV", mapping, "test.format") == "tv"
    assert later == []


def test_page_builder_isolates_a_failing_record() -> None:
    """A record that raises leaves its raw copy and a reject, none of its rows; others go through."""
    builder = c.PageBuilder()

    def good() -> c.Rows:
        return [("t.a", {"source_id": "1"}), ("t.a", {"source_id": "1"}), ("t.l", {"k": 1})]

    def bad() -> c.Rows:
        raise SkippableRecordError("startDate = 'x': expected an ISO date YYYY-MM-DD")

    builder.record("anime", {"id": 1}, "1", good)
    builder.record("anime", {"id": 2}, "2", bad)
    batch = builder.batch
    assert [r.source_id for r in batch.raw] == ["1", "2"]
    assert batch.rows == {"t.a": [{"source_id": "1"}], "t.l": [{"k": 1}]}
    assert [(r.source_id, r.error) for r in batch.rejects] == [
        ("2", "startDate = 'x': expected an ISO date YYYY-MM-DD")
    ]


def test_only_anime_keep_a_broadcast_season() -> None:
    """A manga (or novel) start date gives no season; an anime keeps the one it was given."""
    start = _pd(date(2019, 12, 1), "month")
    assert c.date_columns(start, None, ("winter", 2020), "manga")["season"] is None
    assert c.date_columns(start, None, ("winter", 2020), "anime")["season"] == "winter"


def test_impossible_years_are_stored_null_and_noted() -> None:
    """Before 1900 or more than 20 years ahead: NULL, with one note naming the field and year."""
    with c.collect_notes() as notes:
        columns = c.date_columns(
            _pd(date(1066, 10, 14), "day"),
            _pd(date(2999, 1, 1), "year"),
            ("fall", 1066),
            "anime",
            fields=("startDate", "endDate"),
        )
    assert (columns["start_date"], columns["start_precision"]) == (None, None)
    assert (columns["end_date"], columns["end_precision"]) == (None, None)
    assert (columns["season"], columns["season_year"]) == (None, None)
    assert [field for field, _ in notes] == ["startDate", "endDate", "season"]
    assert "1066" in notes[0][1]
    assert "2999" in notes[1][1]


def test_an_end_before_the_start_is_stored_null_and_noted() -> None:
    """The start is kept (it places the season); the end that precedes it is NULL."""
    with c.collect_notes() as notes:
        columns = c.date_columns(
            _pd(date(2020, 4, 1), "day"), _pd(date(2019, 1, 1), "day"), ("spring", 2020), "anime"
        )
    assert columns["start_date"] == date(2020, 4, 1)
    assert columns["end_date"] is None
    assert notes == [("end_date", "end 2019-01-01 before start 2020-04-01")]
    plain = c.date_columns(_pd(date(1999, 1, 1), "day"), _pd(date(1999, 1, 1), "day"), None, "anime")
    assert plain["end_date"] == date(1999, 1, 1)  # a one-day work is fine
