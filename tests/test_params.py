"""Tests of ``voucherify_async._params``: checking and encoding request arguments.

Table-driven tests pin each accepted and refused value; hypothesis properties pin
the round trip of ``end_date`` through its wire format and the safety of action ids.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from voucherify_async._params import (
    MAX_LIMIT,
    ceil_to_ms,
    check_action_id,
    check_limit,
    format_end_date,
    parse_moment,
    truncate_to_ms,
)

PLUS_2 = timezone(timedelta(hours=2))
MINUS_5_30 = timezone(-timedelta(hours=5, minutes=30))


# --- check_limit ------------------------------------------------------------------


def test_max_limit_is_the_apis_100() -> None:
    """The documented upper bound of ``limit`` is 100."""
    assert MAX_LIMIT == 100


@pytest.mark.parametrize("value", [1, 2, 50, 99, 100])
def test_check_limit_returns_ints_from_1_to_100(value: int) -> None:
    """Every int in 1..100 passes unchanged."""
    assert check_limit(value) == value


@pytest.mark.parametrize("value", [0, 101, -1, 10**6])
def test_check_limit_refuses_ints_out_of_range_with_value_error(value: int) -> None:
    """An int outside 1..100 is a ValueError whose message names the value."""
    with pytest.raises(ValueError, match=rf"got {value}$"):
        check_limit(value)


@pytest.mark.parametrize("value", [1.0, "10", True, False, None, 10.5, [10]])
def test_check_limit_refuses_non_ints_with_type_error(value: object) -> None:
    """A float, str, bool or None is a TypeError naming the type (a bool is not an int)."""
    with pytest.raises(TypeError, match=type(value).__name__):
        check_limit(value)


def test_check_limit_names_the_argument_in_its_messages() -> None:
    """The ``name`` keyword appears in both errors, so ``page_size`` reads as ``page_size``."""
    with pytest.raises(ValueError, match=r"^page_size "):
        check_limit(0, name="page_size")
    with pytest.raises(TypeError, match=r"^page_size "):
        check_limit("1", name="page_size")


# --- parse_moment: accepted values ------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            datetime(2022, 9, 5, 13, 40, 17, 98_000, tzinfo=PLUS_2),
            datetime(2022, 9, 5, 11, 40, 17, 98_000, tzinfo=UTC),
            id="aware-datetime-plus-2h",
        ),
        pytest.param(
            datetime(2022, 9, 5, 6, 10, 17, 123_456, tzinfo=MINUS_5_30),
            datetime(2022, 9, 5, 11, 40, 17, 123_456, tzinfo=UTC),
            id="aware-datetime-minus-5h30-keeps-microseconds",
        ),
        pytest.param(
            datetime(2022, 9, 5, 11, 40, 17, tzinfo=UTC),
            datetime(2022, 9, 5, 11, 40, 17, tzinfo=UTC),
            id="aware-datetime-utc",
        ),
        pytest.param(
            date(2016, 11, 16),
            datetime(2016, 11, 16, tzinfo=UTC),
            id="date-is-midnight-utc",
        ),
        pytest.param(
            "2016-11-16",
            datetime(2016, 11, 16, tzinfo=UTC),
            id="date-string",
        ),
        pytest.param(
            " 2016-11-16 ",
            datetime(2016, 11, 16, tzinfo=UTC),
            id="date-string-with-surrounding-spaces",
        ),
        pytest.param(
            "2016-11-16T14:14:31Z",
            datetime(2016, 11, 16, 14, 14, 31, tzinfo=UTC),
            id="docs-example-z",
        ),
        pytest.param(
            "2022-09-05T11:40:17.098Z",
            datetime(2022, 9, 5, 11, 40, 17, 98_000, tzinfo=UTC),
            id="response-timestamp-milliseconds",
        ),
        pytest.param(
            "2022-09-05T13:40:17.098+02:00",
            datetime(2022, 9, 5, 11, 40, 17, 98_000, tzinfo=UTC),
            id="plus-2h-offset",
        ),
        pytest.param(
            "2022-09-05T00:30:00-02:00",
            datetime(2022, 9, 5, 2, 30, tzinfo=UTC),
            id="negative-offset-crosses-no-day",
        ),
        pytest.param(
            "2022-09-05T01:30:00+02:00",
            datetime(2022, 9, 4, 23, 30, tzinfo=UTC),
            id="positive-offset-crosses-midnight-back",
        ),
        pytest.param(
            "2022-09-06T00:00:00.000000+0000",
            datetime(2022, 9, 6, tzinfo=UTC),
            id="vendor-sdk-format",
        ),
    ],
)
def test_parse_moment_returns_aware_utc(value: object, expected: datetime) -> None:
    """Accepted values become the same instant as an aware datetime in UTC."""
    parsed = parse_moment(value)
    assert parsed == expected
    assert parsed.tzinfo is UTC
    assert parsed.utcoffset() == timedelta(0)


# --- parse_moment: refused values -------------------------------------------------


@pytest.mark.parametrize(
    ("value", "named_as"),
    [
        pytest.param(datetime(2022, 9, 5, 11, 40, 17), "2022-09-05T11:40:17", id="naive-datetime"),
        pytest.param("2016-11-16T14:14:31", "'2016-11-16T14:14:31'", id="naive-string"),
        pytest.param("2023-02-30", "'2023-02-30'", id="impossible-date"),
        pytest.param("2023-02-30T10:00:00Z", "'2023-02-30T10:00:00Z'", id="impossible-date-time"),
        pytest.param("nope", "'nope'", id="not-a-date"),
        pytest.param("", "''", id="empty-string"),
        pytest.param("2016-11-16T25:00:00Z", "'2016-11-16T25:00:00Z'", id="hour-25"),
    ],
)
def test_parse_moment_refuses_with_value_error_naming_the_value(
    value: object, named_as: str
) -> None:
    """A naive datetime or a string that is not an aware ISO-8601 value is a ValueError
    whose message quotes the value."""
    with pytest.raises(ValueError, match=re.escape(named_as)):
        parse_moment(value)


@pytest.mark.parametrize("value", [1_662_378_017, 1_662_378_017.098, True, None, b"2016-11-16"])
def test_parse_moment_refuses_other_types_with_type_error(value: object) -> None:
    """An int (epoch), float, bool, None or bytes is a TypeError naming the type."""
    with pytest.raises(TypeError, match=rf"not {type(value).__name__}$"):
        parse_moment(value)


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:00:00-05:00",
        "9999-12-31T23:59:59.999500Z",
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
        datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),
        datetime.max.replace(tzinfo=UTC),
    ],
)
@pytest.mark.parametrize("name", ["end_date", "since"])
def test_parse_moment_refuses_moments_past_the_edges_with_value_error(
    value: object, name: str
) -> None:
    """Outside 0001-01-01T00:00:00.000Z .. 9999-12-31T23:59:59.999Z once in UTC (or
    where rounding up to the millisecond would leave it): a ValueError naming the
    argument, never an OverflowError."""
    with pytest.raises(ValueError, match=rf"^{name} .* outside"):
        parse_moment(value, name=name)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0001-01-01T00:00:00Z", datetime.min.replace(tzinfo=UTC)),
        ("9999-12-31T23:59:59.999Z", datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)),
        (date(9999, 12, 31), datetime(9999, 12, 31, tzinfo=UTC)),
    ],
)
def test_parse_moment_accepts_the_edges_themselves(value: object, expected: datetime) -> None:
    assert parse_moment(value) == expected


def test_parse_moment_value_error_is_not_chained_to_the_parser() -> None:
    """The parser's own ValueError is replaced (``from None``), not shown as a second traceback."""
    with pytest.raises(ValueError, match="'nope'") as info:
        parse_moment("nope")
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


# --- format_end_date ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        pytest.param(
            datetime(2022, 9, 5, 11, 40, 17, 98_000, tzinfo=UTC),
            "2022-09-05T11:40:17.098Z",
            id="milliseconds",
        ),
        pytest.param(
            datetime(2016, 11, 16, 14, 14, 31, tzinfo=UTC),
            "2016-11-16T14:14:31.000Z",
            id="whole-second-gets-000",
        ),
        pytest.param(
            datetime(2022, 9, 5, 11, 40, 17, 98_765, tzinfo=UTC),
            "2022-09-05T11:40:17.098Z",
            id="truncates-sub-millisecond",
        ),
        pytest.param(
            datetime(2022, 9, 5, 11, 40, 17, 999_999, tzinfo=UTC),
            "2022-09-05T11:40:17.999Z",
            id="never-rounds-up",
        ),
        pytest.param(
            datetime(2022, 9, 5, 1, 30, 0, 5_000, tzinfo=PLUS_2),
            "2022-09-04T23:30:00.005Z",
            id="converts-offset-to-utc",
        ),
        pytest.param(
            datetime(2022, 9, 5, 6, 10, 17, 1_000, tzinfo=MINUS_5_30),
            "2022-09-05T11:40:17.001Z",
            id="converts-negative-offset",
        ),
        pytest.param(
            datetime(999, 1, 2, 3, 4, 5, 6_000, tzinfo=UTC),
            "0999-01-02T03:04:05.006Z",
            id="pads-year-below-1000-to-four-digits",
        ),
    ],
)
def test_format_end_date_writes_utc_milliseconds_z(moment: datetime, expected: str) -> None:
    """The wire format is ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC, sub-millisecond digits dropped."""
    assert format_end_date(moment) == expected


# --- truncate_to_ms / ceil_to_ms ----------------------------------------------------

_BASE = datetime(2022, 9, 5, 11, 40, 17, tzinfo=UTC)


@pytest.mark.parametrize(
    ("microsecond", "truncated", "ceiled"),
    [
        (0, 0, 0),
        (1, 0, 1_000),
        (999, 0, 1_000),
        (1_000, 1_000, 1_000),
        (1_001, 1_000, 2_000),
        (98_765, 98_000, 99_000),
        (999_000, 999_000, 999_000),
    ],
)
def test_truncate_and_ceil_to_whole_milliseconds(
    microsecond: int, truncated: int, ceiled: int
) -> None:
    """``truncate_to_ms`` drops sub-millisecond digits; ``ceil_to_ms`` rounds them up;
    a whole millisecond is unchanged by both."""
    moment = _BASE.replace(microsecond=microsecond)
    assert truncate_to_ms(moment) == _BASE.replace(microsecond=truncated)
    assert ceil_to_ms(moment) == _BASE.replace(microsecond=ceiled)


def test_ceil_to_ms_carries_into_the_next_second_and_keeps_the_timezone() -> None:
    """Rounding ``.999001`` up reaches the next second; the tzinfo is kept as given."""
    moment = datetime(2022, 12, 31, 23, 59, 59, 999_001, tzinfo=PLUS_2)
    ceiled = ceil_to_ms(moment)
    assert ceiled == datetime(2023, 1, 1, 0, 0, 0, tzinfo=PLUS_2)
    assert ceiled.tzinfo is PLUS_2
    assert truncate_to_ms(moment).tzinfo is PLUS_2


def test_ceil_to_ms_past_the_end_of_the_datetime_range_raises_overflow_error() -> None:
    """No whole millisecond follows ``9999-12-31T23:59:59.999001``: OverflowError, as
    documented (never a value below the moment)."""
    assert ceil_to_ms(datetime.max.replace(microsecond=999_000, tzinfo=UTC)).microsecond == 999_000
    with pytest.raises(OverflowError):
        ceil_to_ms(datetime.max.replace(microsecond=999_001, tzinfo=UTC))


@settings(max_examples=200)
@given(st.datetimes(timezones=st.just(UTC)))
def test_truncate_and_ceil_bracket_the_moment_within_one_millisecond(moment: datetime) -> None:
    """``truncate <= moment <= ceil``, both whole milliseconds, less than 1 ms apart."""
    if moment.replace(tzinfo=None) > datetime.max - timedelta(milliseconds=1):
        return  # ceil of the last millisecond of year 9999 is not representable
    low, high = truncate_to_ms(moment), ceil_to_ms(moment)
    assert low <= moment <= high
    assert low.microsecond % 1000 == 0
    assert high.microsecond % 1000 == 0
    assert high - low in (timedelta(0), timedelta(milliseconds=1))
    assert (high == low) == (moment.microsecond % 1000 == 0)


# --- check_action_id ----------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["aa_0ba518c55290c6fd62", "a", "A-Z_0-9", "x" * 128],
)
def test_check_action_id_accepts_letters_digits_underscore_dash(value: str) -> None:
    """Ids of 1..128 letters, digits, ``_`` and ``-`` pass unchanged."""
    assert check_action_id(value) == value


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("../x", id="dot-dot-slash"),
        pytest.param("a/b", id="slash"),
        pytest.param("a?b=1", id="query"),
        pytest.param("a#b", id="fragment"),
        pytest.param("a b", id="space"),
        pytest.param("a%2Fb", id="percent-encoding"),
        pytest.param("a\r\nb", id="crlf"),
        pytest.param("aa_1\n", id="trailing-newline"),
        pytest.param("a\x00b", id="nul"),
        pytest.param("aé", id="non-ascii-letter"),
        pytest.param("a" * 129, id="129-chars"),
    ],
)
def test_check_action_id_refuses_with_value_error_naming_the_value(value: str) -> None:
    """Anything that could change the request path, add a query, or split a header line
    is a ValueError quoting (the start of) the id."""
    with pytest.raises(ValueError, match=re.escape(repr(value[:140]))):
        check_action_id(value)


@pytest.mark.parametrize("value", [None, 123, b"aa_1", ["aa_1"]])
def test_check_action_id_refuses_non_str_with_type_error(value: object) -> None:
    """A non-``str`` id is a TypeError naming the type."""
    with pytest.raises(TypeError, match=rf"not {type(value).__name__}$"):
        check_action_id(value)


# --- properties ---------------------------------------------------------------------

_offsets = st.timedeltas(
    min_value=-timedelta(hours=23, minutes=59, seconds=59),
    max_value=timedelta(hours=23, minutes=59, seconds=59),
).map(timezone)


@settings(max_examples=300)
@given(
    st.datetimes(
        # One day of margin at both ends, so that converting to UTC stays representable.
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.one_of(st.just(UTC), _offsets, st.timezones()),
    )
)
@example(datetime(2022, 9, 5, 11, 40, 17, 98_765, tzinfo=UTC))
@example(datetime(2022, 9, 5, 1, 30, 0, 999_999, tzinfo=PLUS_2))
@example(datetime(999, 1, 2, 3, 4, 5, 6_000, tzinfo=UTC))
def test_format_then_parse_moment_is_the_utc_moment_truncated_to_ms(moment: datetime) -> None:
    """For any aware datetime, what is sent parses back to the same instant, in UTC,
    truncated to the millisecond."""
    assert parse_moment(format_end_date(moment)) == truncate_to_ms(moment.astimezone(UTC))


_ID_ALPHABET = "azAZ09_-"
_HOSTILE = "/?#% .\\:@&=+\r\n\t\x00\x7f\u00e9\u2028"


@settings(max_examples=300)
@given(
    st.one_of(
        st.text(),
        st.text(alphabet=_ID_ALPHABET + _HOSTILE, max_size=130),
        st.text(alphabet=_ID_ALPHABET, min_size=120, max_size=135),
    )
)
def test_accepted_action_ids_hold_no_path_query_or_control_characters(text: str) -> None:
    """Any text that ``check_action_id`` accepts is 1..128 characters and contains none of
    ``/ ? # %``, space, a control character, or anything outside ASCII."""
    try:
        accepted = check_action_id(text)
    except ValueError:
        return
    assert accepted == text
    assert 1 <= len(text) <= 128
    assert not set(text) & set("/?#% ")
    assert all(32 < ord(char) < 127 for char in text)


@settings(max_examples=100)
@given(st.text(alphabet=_ID_ALPHABET, min_size=1, max_size=128))
def test_every_id_of_letters_digits_underscore_dash_is_accepted(text: str) -> None:
    """The counterpart of the property above, so that it is not vacuous: valid ids pass."""
    assert check_action_id(text) == text
