"""The quarterly review's picture: incidents per cause category per month, and the on-time rate.

Drawn on the server with matplotlib's Agg canvas (no display, no pyplot state shared between
threads), as a PNG sized for Slack's preview: 1200 x 675 pixels, large type, one bar group a
month stacked by cause, the share of action items done on time as a line on its own axis.
"""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bot.postmortem_content import CAUSE_CATEGORIES
from bot.views import QuarterReview

CAUSE_LABELS = {**CAUSE_CATEGORIES, "unknown": "Not yet known"}
# One colour a cause, the same every quarter (colour-blind safe, Okabe-Ito).
COLOURS = {
    "configuration": "#0072B2",
    "deployment": "#E69F00",
    "dependency_failure": "#009E73",
    "capacity": "#CC79A7",
    "human_error": "#D55E00",
    "other": "#56B4E9",
    "unknown": "#999999",
}


def review_chart(review: QuarterReview) -> bytes:
    """The PNG bytes of the review's chart."""
    figure = Figure(figsize=(8, 4.5), dpi=150)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    months = [m.month.strftime("%b %Y") for m in review.months]
    causes = [c for c in COLOURS if any(m.by_cause.get(c) for m in review.months)]
    bottoms = [0] * len(months)
    for cause in causes:
        counts = [m.by_cause.get(cause, 0) for m in review.months]
        axes.bar(months, counts, bottom=bottoms, color=COLOURS[cause], label=CAUSE_LABELS.get(cause, cause), width=0.6)
        bottoms = [b + c for b, c in zip(bottoms, counts, strict=True)]
    axes.set_ylabel("Incidents", fontsize=13)
    axes.set_ylim(0, max([*bottoms, 1]) * 1.25)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.tick_params(labelsize=12)
    axes.spines[["top"]].set_visible(False)
    rate_axes = axes.twinx()
    rates = [100 * m.done_on_time / m.done if m.done else None for m in review.months]
    points = [(x, r) for x, r in zip(months, rates, strict=True) if r is not None]
    if points:
        rate_axes.plot(
            [x for x, _ in points], [r for _, r in points], color="black", marker="o", linewidth=2.5, label="On time %"
        )
    rate_axes.set_ylim(0, 105)
    rate_axes.set_ylabel("Action items done on time (%)", fontsize=12)
    rate_axes.tick_params(labelsize=12)
    rate_axes.spines[["top"]].set_visible(False)
    handles, labels = axes.get_legend_handles_labels()
    more_handles, more_labels = rate_axes.get_legend_handles_labels()
    if handles or more_handles:
        axes.legend(handles + more_handles, labels + more_labels, loc="upper left", fontsize=10, ncols=2, frameon=False)
    figure.suptitle(f"Incidents by cause, {review.stats.period}", fontsize=15, fontweight="bold")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
