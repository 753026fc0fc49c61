"""Normalisation rules shared by the catalogue transforms: dates, seasons, scores, counts, titles, text.

Every reader takes the raw value and the field it came from, returns the unified value or None,
and raises ``SkippableRecordError`` (the record goes to ``etl.rejects``) when the value breaks the
source's contract. The rules (DESIGN §4):

* dates keep their precision (``day``/``month``/``year``) and never invent a day: a month-precise
  date is stored as the 1st of that month, a year-precise one as 1 January, with the precision;
* seasons are the source's own, else derived from a start date whose month is known; only anime
  have a broadcast season (manga, novels and one-shots never get one);
* a date with an impossible year (before 1900, or more than 20 years ahead) is stored NULL, and so
  is an end date before its start date; each is noted (logged once per stream as
  ``data_quality``) and the value the source sent stays in ``raw.records``;
* scores are on one 0-100 scale; counts where 0 means "unknown" become None;
* text is stripped; empty strings are None; synopses lose their HTML tags (``<br>`` becomes a line
  break, entities are decoded) so every source reads the same in SQL.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pipeline.errors import SkippableRecordError
from pipeline.records import Batch, RawRecord, Reject

Row = dict[str, Any]
Rows = list[tuple[str, Row]]  # (table, row) pairs produced by one record

SEASONS = ("winter", "spring", "summer", "fall")
_ISO_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:[T ].*)?$")
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?>|<!--.*?-->", re.DOTALL)
_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_SLUG_JUNK = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class PartialDate:
    """A date and how much of it the source knows: ``day``, ``month`` or ``year``."""

    value: date
    precision: str

    @property
    def month_known(self) -> bool:
        return self.precision in ("day", "month")


def _fail(field: str, value: Any, expected: str) -> SkippableRecordError:
    return SkippableRecordError(f"{field} = {value!r}: expected {expected}")


def _build_date(field: str, raw: Any, year: int, month: int | None, day: int | None) -> PartialDate:
    """A PartialDate from parts; month/day None lower the precision instead of being invented."""
    try:
        if month is None:
            return PartialDate(date(year, 1, 1), "year")
        if day is None:
            return PartialDate(date(year, month, 1), "month")
        return PartialDate(date(year, month, day), "day")
    except ValueError:
        raise _fail(field, raw, "a real calendar date") from None


def iso_date(value: Any, field: str) -> PartialDate | None:
    """``YYYY-MM-DD`` (Kitsu), also ``YYYY-MM``, ``YYYY`` and ISO datetimes (old AniList v1).

    A datetime keeps the calendar date as the source wrote it (its own offset), not UTC's.
    """
    if value is None or value == "":
        return None
    match = _ISO_DATE.match(value) if isinstance(value, str) else None
    if match is None:
        raise _fail(field, value, "an ISO date YYYY-MM-DD")
    year, month, day = (int(part) if part else None for part in match.groups())
    assert year is not None
    return _build_date(field, value, year, month, day)


def fuzzy_int_date(value: Any, field: str) -> PartialDate | None:
    """AniList v1 fuzzy ``YYYYMMDD`` (int or digit string); ``00`` parts are unknown, 0 is no date."""
    if isinstance(value, bool):
        raise _fail(field, value, "a YYYYMMDD integer")
    if value is None or value == "":
        return None
    digits = str(value).strip()
    if not digits.isdigit():
        raise _fail(field, value, "a YYYYMMDD integer")
    if int(digits) == 0:
        return None
    if len(digits) != 8:
        raise _fail(field, value, "a YYYYMMDD integer")
    year, month, day = int(digits[:4]), int(digits[4:6]), int(digits[6:])
    if year == 0:
        return None
    if month == 0 and day != 0:
        raise _fail(field, value, "a day only together with its month")
    return _build_date(field, value, year, month or None, day or None)


def fuzzy_date(value: Any, field: str) -> PartialDate | None:
    """AniList v2 ``FuzzyDate`` ``{year, month, day}``, each nullable; no year means no date."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _fail(field, value, "an object {year, month, day}")
    year, month, day = (value.get(key) for key in ("year", "month", "day"))
    if year is None:
        return None
    for part in (year, month, day):
        if part is not None and (not isinstance(part, int) or isinstance(part, bool)):
            raise _fail(field, value, "integer year/month/day")
    return _build_date(field, value, year, month, day if month is not None else None)


def season_from_date(start: PartialDate | None) -> tuple[str, int] | None:
    """Dec-Feb winter, Mar-May spring, Jun-Aug summer, Sep-Nov fall; December is next year's winter."""
    if start is None or not start.month_known:
        return None
    month, year = start.value.month, start.value.year
    if month == 12:
        return "winter", year + 1
    return SEASONS[month // 3], year


def season_from_code(value: Any, field: str, start: PartialDate | None) -> tuple[str, int] | None:
    """AniList v1 ``season``: two digits of year then 1 winter … 4 fall (173 = summer 2017).

    The century is the one that puts the season next to the start date when the year is known,
    else 20xx below 30 and 19xx from 30 on (v1 shut down in 2019: it never announced 2030).
    """
    if value is None or value == "" or value == 0:
        return None
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or len(text) not in (2, 3):
        raise _fail(field, value, "a season code such as 173 (2017 summer)")
    number = int(text)
    yy, quarter = divmod(number, 10)
    if not 1 <= quarter <= 4:
        raise _fail(field, value, "a last digit 1 (winter) to 4 (fall)")
    if start is not None:
        century = (start.value.year // 100) * 100
        candidates = [century - 100 + yy, century + yy, century + 100 + yy]
        year = min(candidates, key=lambda y: abs(y - start.value.year))
    else:
        year = 2000 + yy if yy < 30 else 1900 + yy
    return SEASONS[quarter - 1], year


def score(value: Any, field: str, *, zero_is_missing: bool = False) -> Decimal | None:
    """A 0-100 score from a number or a numeric string, rounded to 2 decimals."""
    if isinstance(value, bool):
        raise _fail(field, value, "a number 0-100")
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _fail(field, value, "a number 0-100") from None
    if not number.is_finite() or not 0 <= number <= 100:
        raise _fail(field, value, "a number 0-100")
    if zero_is_missing and number == 0:
        return None
    return number.quantize(Decimal("0.01"))


def integer(value: Any, field: str) -> int | None:
    """An integer from an int or a digit string (0 kept: episode 0 exists)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _fail(field, value, "an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    raise _fail(field, value, "an integer")


def non_negative(value: Any, field: str) -> int | None:
    """A tally where 0 is a real value (users with the title on a list)."""
    number = integer(value, field)
    if number is not None and number < 0:
        raise _fail(field, value, "a count >= 0")
    return number


def count(value: Any, field: str) -> int | None:
    """A count where 0 (or less) means unknown: None then."""
    number = integer(value, field)
    return number if number is not None and number > 0 else None


def text(value: Any, field: str) -> str | None:
    """A stripped string; empty means None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail(field, value, "a string")
    stripped = value.strip()
    return stripped or None


def plain_text(value: Any, field: str) -> str | None:
    """Synopsis text: ``<br>`` → newline, other tags dropped, entities decoded, blank runs collapsed."""
    raw = text(value, field)
    if raw is None:
        return None
    cleaned = _TAG.sub("", _BREAK.sub("\n", raw.replace("\r\n", "\n")))
    cleaned = html.unescape(cleaned).replace("\u00a0", " ")
    cleaned = _BLANK_LINES.sub("\n\n", _TRAILING_SPACE.sub("\n", cleaned))
    return cleaned.strip() or None


def first_text(*candidates: str | None) -> str | None:
    """The first candidate that is a non-empty string (the display-title fallback chain)."""
    for candidate in candidates:
        if candidate:
            return candidate
    return None


def not_a_copy(value: str | None, original: str | None) -> str | None:
    """None when ``value`` merely repeats ``original`` (AniList v1 fills missing titles with the romaji)."""
    return None if value is not None and value == original else value


def slugify(name: str) -> str:
    """``Sci-Fi`` → ``sci-fi``, ``Mahou Shoujo`` → ``mahou-shoujo``."""
    return _SLUG_JUNK.sub("-", name.lower()).strip("-")


def timestamp(value: Any, field: str) -> datetime | None:
    """An aware datetime from an ISO string (``Z`` or offset) or unix seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _fail(field, value, "a timestamp")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _fail(field, value, "an ISO-8601 timestamp") from None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    raise _fail(field, value, "a timestamp")


def require_id(value: Any, field: str) -> str:
    """A record id as text; a record without one cannot be stored."""
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        raise _fail(field, value, "a record id")
    if isinstance(value, int | str):
        return str(value).strip()
    raise _fail(field, value, "a record id (string or integer)")


# ---------------------------------------------------------------------------- vocabularies


FIRST_PLAUSIBLE_YEAR = 1900
YEARS_AHEAD = 20  # announced works are dated a few years ahead at most


def plausible_date(value: PartialDate | None, field: str) -> PartialDate | None:
    """``value`` unless its year is impossible (before 1900, or more than 20 years from now)."""
    if value is None:
        return None
    last = datetime.now(UTC).year + YEARS_AHEAD
    if FIRST_PLAUSIBLE_YEAR <= value.value.year <= last:
        return value
    note_quality(field, f"year {value.value.year} outside {FIRST_PLAUSIBLE_YEAR}-{last}")
    return None


def date_columns(
    start: PartialDate | None,
    end: PartialDate | None,
    season: tuple[str, int] | None,
    kind: str,
    *,
    fields: tuple[str, str] = ("start_date", "end_date"),
) -> dict[str, Any]:
    """The media columns for start/end dates with their precision, and the season.

    The data-quality rules apply here: impossible years and an end before the start are stored
    NULL (noted), and only anime keep a season. ``fields`` names the source's date fields for notes.
    """
    start, end = plausible_date(start, fields[0]), plausible_date(end, fields[1])
    if start is not None and end is not None and end.value < start.value:
        note_quality(fields[1], f"end {end.value} before start {start.value}")
        end = None
    if kind != "anime":
        season = None
    elif season is not None and not FIRST_PLAUSIBLE_YEAR <= season[1] <= datetime.now(UTC).year + YEARS_AHEAD:
        note_quality("season", f"season year {season[1]} outside the plausible years")
        season = None
    return {
        "start_date": start.value if start else None,
        "start_precision": start.precision if start else None,
        "end_date": end.value if end else None,
        "end_precision": end.precision if end else None,
        "season": season[0] if season else None,
        "season_year": season[1] if season else None,
    }


# Character detail columns (catalog.characters, sql/005) that only some sources fill.
NO_CHARACTER_DETAILS: dict[str, Any] = {
    "gender": None,
    "ages": None,
    "birth_date": None,
    "nationality": None,
    "occupations": None,
    "origin": None,
}


# (field, value) pairs met outside a vocabulary during the current ``collect_unknown`` block.
# Transforms stay pure: the dispatcher opens a block per call and returns the pairs in
# ``Batch.unknown``; the runner logs each pair once per stream.
_unknown: ContextVar[list[tuple[str, str]] | None] = ContextVar("unknown_vocabulary", default=None)


def vocabulary(value: Any, mapping: dict[str, str], field: str) -> str | None:
    """A source value (case-insensitive) in the unified vocabulary; unmapped values become ``unknown``."""
    if value is None or value == "":
        return None
    key = str(value).strip().lower()
    mapped = mapping.get(key)
    if mapped is not None:
        return mapped
    note_unknown(field, str(value))
    return "unknown"


def note_unknown(field: str, value: str) -> None:
    """Remember a value outside its vocabulary in the current collection block (if any)."""
    pending = _unknown.get()
    if pending is not None and (field, value) not in pending:
        pending.append((field, value))


_notes: ContextVar[list[tuple[str, str]] | None] = ContextVar("quality_notes", default=None)


def note_quality(field: str, note: str) -> None:
    """Remember that a data-quality rule stored ``field`` as NULL, in the current block (if any)."""
    pending = _notes.get()
    if pending is not None and (field, note) not in pending:
        pending.append((field, note))


@contextmanager
def collect_notes() -> Iterator[list[tuple[str, str]]]:
    """Collect the (field, note) pairs of data-quality rules applied inside the block, each once."""
    pending: list[tuple[str, str]] = []
    token = _notes.set(pending)
    try:
        yield pending
    finally:
        _notes.reset(token)


@contextmanager
def collect_unknown() -> Iterator[list[tuple[str, str]]]:
    """Collect the (field, value) pairs met outside their vocabulary inside the block, each once."""
    pending: list[tuple[str, str]] = []
    token = _unknown.set(pending)
    try:
        yield pending
    finally:
        _unknown.reset(token)


# ---------------------------------------------------------------------------- page assembly


@dataclass(slots=True)
class PageBuilder:
    """Collects one page into a ``Batch``: raw + rows per record, failures isolated, duplicate rows dropped.

    A record's rows are built completely before any is kept, so a record that fails halfway leaves
    nothing behind but its raw copy and its reject. Entity rows are unique per (table, source_id)
    within a batch (first wins): a staged upsert cannot touch one row twice.
    """

    batch: Batch = field(default_factory=Batch)
    _keys: set[tuple[str, Any]] = field(default_factory=set)

    def record(
        self,
        resource: str,
        payload: Any,
        source_id: str | None,
        build: Callable[[], Rows],
        *,
        volatile: tuple[str, ...] = (),
    ) -> None:
        """Land ``payload`` in raw and add the rows ``build`` returns, or a reject if it raises."""
        if source_id is not None:
            self.batch.raw.append(RawRecord(resource, source_id, payload, volatile))
        try:
            rows = build()
        except Exception as exc:  # one bad record must not cost the page
            self.batch.rejects.append(Reject(resource, source_id, payload, describe_error(exc)))
            return
        for table, row in rows:
            self.add(table, row)

    def reject(self, resource: str, source_id: str | None, payload: Any, error: str) -> None:
        self.batch.rejects.append(Reject(resource, source_id, payload, error))

    def add(self, table: str, row: Row) -> None:
        key = (table, row["source_id"]) if "source_id" in row else (table, frozenset(row.items()))
        if key not in self._keys:
            self._keys.add(key)
            self.batch.add(table, row)


def describe_error(exc: Exception) -> str:
    """A reject reason: the message of a contract break, the type and message of anything else."""
    if isinstance(exc, SkippableRecordError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
