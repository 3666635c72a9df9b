"""The braille chart renderer: it fits its box and survives what diverged runs produce."""

import math

import pytest

from tui.widgets.chart import Figure, Line, build

XS = list(range(1, 81))
YS = [1 / x for x in XS]


def figure(lines, width=60, height=14, ylog=False, xlabel="epoch") -> Figure:
    return Figure(tuple(lines), "title", xlabel, "", ylog, width, height)


@pytest.mark.parametrize("width, height", [(60, 14), (38, 5), (120, 40), (20, 3)])
def test_a_chart_fits_its_box(width, height):
    text = build(figure([Line("a", XS, YS), Line("b", XS, [2 * y for y in YS])], width, height))
    rows = text.plain.split("\n")
    assert len(rows) <= height and all(len(r) <= width for r in rows)


def test_nan_inf_and_missing_values_are_left_out():
    ys = [math.nan, 1.0, math.inf, None, 0.5, -math.inf]
    rows = build(figure([Line("diverged", list(range(6)), ys)])).plain
    assert "⣀⣀ diverged" in rows and "nan" not in rows.lower() and "inf" not in rows.lower()
    assert "waiting for data" in build(figure([Line("x", [1, 2], [math.nan, None])])).plain


def test_log_scale_drops_non_positive_values_and_says_so():
    rows = build(figure([Line("", [1, 2, 3], [0.0, 10.0, 100.0])], ylog=True)).plain
    assert "(log10)" in rows and "2┤" in rows  # log10(100) = 2 is the top tick


def test_a_scatter_keeps_every_point():
    # 400 points on distinct dots of a chart 30 columns wide: thinning would keep ~30
    xs = [i % 20 for i in range(400)]
    ys = [i // 20 for i in range(400)]
    dots = build(figure([Line("", xs, ys, scatter=True)], width=60, height=30)).plain
    drawn = sum(bin(ord(ch) - 0x2800).count("1") for ch in dots if 0x2800 < ord(ch) <= 0x28FF)
    assert drawn == 400
