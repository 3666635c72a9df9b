"""The braille chart renderer: it fits its box and survives what diverged runs produce."""

import math

import pytest

from hypertui.tui.app.widgets.chart import Figure, Line, build, nice_ticks

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
    # 0 is left out; 10 and 100 span the axis, labelled as themselves
    assert "(log scale)" in rows and "\n100┤" in rows and "\n 10┤" in rows


def test_ticks_are_round_values():
    assert [label for _, label in nice_ticks(1, 20, 4)] == ["5", "10", "15", "20"]
    assert [label for _, label in nice_ticks(0.0223, 0.51, 4)] == [
        "0.1",
        "0.2",
        "0.3",
        "0.4",
        "0.5",
    ]
    assert [label for _, label in nice_ticks(0.0852, 0.841, 0)] == ["0.5"]
    assert [label for _, label in nice_ticks(0.512, 0.514, 1)] == ["0.512", "0.513", "0.514"]
    assert [label for _, label in nice_ticks(-0.83, 0.38, 4)][3] == "0.00"  # never "-0.00"


def test_a_scatter_keeps_every_point():
    # 400 points on distinct dots of a chart 30 columns wide: thinning would keep ~30
    xs = [i % 20 for i in range(400)]
    ys = [i // 20 for i in range(400)]
    dots = build(figure([Line("", xs, ys, scatter=True)], width=60, height=30)).plain
    drawn = sum(bin(ord(ch) - 0x2800).count("1") for ch in dots if 0x2800 < ord(ch) <= 0x28FF)
    assert drawn == 400


def test_a_log_axis_labels_real_values_not_their_logarithms():
    text = build(figure([Line("mse", XS, [0.001 * x * x for x in XS])], ylog=True)).plain
    labels = {row.split("┤")[0].strip() for row in text.split("\n") if "┤" in row}
    assert {"0.01", "0.1", "1"} <= labels
    assert not any(label.startswith("-") for label in labels)  # MSE is never negative


def test_a_log_axis_within_one_decade_still_shows_real_values():
    text = build(figure([Line("mse", XS, [0.02 + 0.0005 * x for x in XS])], ylog=True)).plain
    labels = [row.split("┤")[0].strip() for row in text.split("\n") if "┤" in row]
    assert labels and all(0.01 <= float(v) <= 0.07 for v in labels)


def test_white_lines_take_the_themes_text_colour_so_a_light_theme_shows_them():
    from hypertui.tui.app.widgets.chart import theme_colors

    light = theme_colors({"foreground": "#1F1F1F", "warning": "#FEA62B", "error": "#B93C5B"})
    fig = Figure((Line("y = x", XS, XS, "white"),), "t", "x", "", False, 60, 14, light)
    colours = {str(span.style.color.name) for span in build(fig).spans if span.style.color}
    assert "#1f1f1f" in {c.lower() for c in colours} and "white" not in colours


def test_a_log_x_axis_spreads_decades_evenly_and_labels_real_values():
    # a log-uniform lr: 1e-4 .. 1e-1, with a point at 0 that a log axis cannot place
    xs = [0.0, 1e-4, 1e-3, 1e-2, 1e-1]
    fig = Figure((Line("", xs, [1, 2, 3, 4, 5], scatter=True),), "", "lr", "", False, 60, 14,
                 xlog=True)  # fmt: skip
    rows = build(fig).plain.split("\n")
    assert rows[-1].strip() == "lr (log scale)"
    ticks = rows[-2].split()
    assert ticks == ["0.0001", "0.001", "0.01", "0.1"]  # whole decades, never -4 .. -1
    starts = [rows[-2].index(t) + len(t) // 2 for t in ticks]
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert max(gaps) - min(gaps) <= 1  # evenly spread: on a linear axis three would touch
    drawn = sum(
        bin(ord(ch) - 0x2800).count("1") for r in rows for ch in r if 0x2800 < ord(ch) <= 0x28FF
    )
    assert drawn == 4  # 0 left out
