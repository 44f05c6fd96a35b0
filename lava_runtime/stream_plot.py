"""The stream's PNG timeline: events per frame, and the predicted (and true) class over stream time."""

from __future__ import annotations

from pathlib import Path

from chipnet.atomic import atomic_write
from lava_runtime.stream import Stats


def plot_timeline(stats: Stats, path: str | Path, classes: list[str]) -> None:
    """Events per frame above, each decision's class (and the labels CSV's, where given) at its window's end below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = stats.timeline
    t0 = rows[0]["t_us"] if rows else 0
    t = [(r["t_us"] - t0) / 1e6 for r in rows]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    top.step(t, [r["events"] for r in rows], where="post", lw=0.8)
    top.set_ylabel("events / frame")
    # A decision belongs to the end of its window: the end of the frame that completed it.
    decided = [((r["t_end_us"] - t0) / 1e6, r) for r in rows if "class" in r]
    bottom.plot([ti for ti, _ in decided], [r["class"] for _, r in decided], "o", ms=3, label="decision")
    truth = [(ti, r["truth"]) for ti, r in decided if "truth" in r]
    if truth:
        bottom.plot([ti for ti, _ in truth], [c for _, c in truth], "_", ms=10, color="k", label="labels CSV")
    if classes:
        bottom.set_yticks(range(-1, len(classes)), ["undecided", *classes], fontsize=7)
    bottom.set_xlabel("stream time (s)")
    bottom.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100))
    plt.close(fig)
