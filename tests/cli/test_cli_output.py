"""The pieces of output and input parsing that need no server."""
from datetime import timedelta

import pytest

from baas_cli.keys import parse_duration
from baas_cli.output import format_time, render_record, render_table


def test_durations():
    assert parse_duration("90") == timedelta(seconds=90)
    assert parse_duration("45s") == timedelta(seconds=45)
    assert parse_duration("1h30m") == timedelta(hours=1, minutes=30)
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("2W") == timedelta(weeks=2)
    for bad in ("", "soon", "1y", "-1h", "1h soon", "h"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_table_columns_line_up_and_cells_stay_on_one_line():
    rows = [{"id": "a", "name": "short"}, {"id": "longer-id", "name": "two\nlines"}, {"id": "c", "name": None}]
    lines = render_table(rows, [("ID", "id"), ("NAME", "name")]).splitlines()
    assert lines == ["ID         NAME",
                     "a          short",
                     "longer-id  two lines",
                     "c          -"]


def test_record_and_times():
    text = render_record({"id": "x", "scopes": ["a", "b"]}, [("id", "id"), ("scopes", "scopes")])
    assert text.splitlines() == ["id:      x", "scopes:  a, b"]
    assert format_time("2026-11-25T16:07:01.165000+00:00") == "2026-11-25 16:07Z"
    assert format_time("2026-11-25T18:07:01+02:00") == "2026-11-25 16:07Z"
    assert format_time(None) == "-"
