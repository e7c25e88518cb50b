"""The loop's plot: PaC and CTR per round, one line per arm with its 95% band, retraining runs marked."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from app.files import write_bytes_atomic

COLOURS = {"frozen": "#7f7f7f", "online": "#1f77b4", "retrain": "#d62728"}
# (b) and (c) coincide until a retraining run is promoted: (b) wide and solid, (c) thin and dashed on top
STYLES = {
    "frozen": {"linestyle": "-", "marker": "o", "linewidth": 1.6},
    "online": {"linestyle": "-", "marker": "s", "linewidth": 3.0},
    "retrain": {"linestyle": "--", "marker": "^", "linewidth": 1.4},
}


def plot_rounds(result: dict[str, Any], path: Path) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is in requirements.txt
        raise RuntimeError("the plot needs matplotlib: pip install -r requirements.txt") from exc

    cfg = result["config"]
    arms = result["arms"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    panels = [("pac", "PaC: lists with a positive engagement"), ("ctr", "CTR: clicked / shown items")]
    for ax, (metric, title) in zip(axes, panels, strict=True):
        for key, arm in arms.items():
            rows = arm["rounds"]
            x = [row["round"] for row in rows]
            y = [row[metric] for row in rows]
            lo = [row[f"{metric}_ci"][0] for row in rows]
            hi = [row[f"{metric}_ci"][1] for row in rows]
            colour = COLOURS.get(key)
            style = STYLES.get(key, {"linestyle": "-", "marker": "o", "linewidth": 1.6})
            ax.plot(x, y, markersize=3.5, color=colour, label=arm["label"], **style)
            ax.fill_between(x, lo, hi, color=colour, alpha=0.18, linewidth=0)
            for run in arm.get("retraining") or []:
                promoted = run.get("decision") == "promote"
                ax.axvline(
                    run["after_round"] + 0.5,
                    color=colour,
                    linestyle="-" if promoted else ":",
                    linewidth=0.9 if promoted else 0.7,
                    alpha=0.6,
                )
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("round")
        ax.set_xlim(0.5, cfg["rounds"] + 0.5)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize=9)
    fig.suptitle(
        f"Closed loop: {cfg['users']} + {cfg['new_users']} new simulated users, {cfg['items']} items, k = {cfg['k']}, "
        f"seed {cfg['seed']} (95% intervals; vertical lines: retraining, solid = promoted)",
        fontsize=10,
    )
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())
    return Path(path)
