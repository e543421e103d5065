"""A PNG of override rates per finding per day (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path


def override_rate_chart(rates: dict[str, dict[str, float]], path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("the chart needs matplotlib: pip install 'cytopenia-cds[chart]'") from None
    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(9, 4.5), dpi=100)
    for finding, by_day in sorted(rates.items()):
        axes.plot(list(by_day), [100 * rate for rate in by_day.values()], marker="o", label=finding)
    axes.set_title("Cards overridden, % of cards shown, per day")
    axes.set_ylabel("override rate (%)")
    axes.set_ylim(0, 100)
    axes.tick_params(axis="x", labelrotation=45)
    if rates:
        axes.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, format="png")
    pyplot.close(figure)
