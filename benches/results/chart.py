"""Draws whole.png from summary.csv (written by `whole report`).

Usage: python3 chart.py [RESULTS_DIR]  (needs matplotlib)
Three panels per scenario: time from Established to the whole table in the receiver's FIB,
sender CPU for the transfer, sender peak RSS. Log scales: the senders differ by orders of
magnitude.
"""
import csv
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
SENDERS = ["berth", "bird", "frr", "gobgp"]
COLORS = {"berth": "#1b9e77", "bird": "#7570b3", "frr": "#d95f02", "gobgp": "#e7298a"}
ORDER = ["1k", "10k", "100k", "100k-rib", "1m", "100x1k"]

rows = list(csv.DictReader(open(os.path.join(HERE, "summary.csv"))))
scenarios = [s for s in ORDER if any(r["scenario"] == s for r in rows)]
panels = [
    ("all_ms", "Established → 100 % at the receiver (ms; FIB, or BGP table for 100k-rib)"),
    ("wire_last_ms", "Established → last UPDATE on the wire (ms)"),
    ("cpu_ms", "sender CPU for the transfer (ms)"),
    ("peak_rss_mb", "sender peak RSS (MB)"),
]
fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5))
width = 0.8 / len(SENDERS)
for ax, (field, title) in zip(axes, panels):
    lowest = math.inf
    for k, sender in enumerate(SENDERS):
        xs, ys = [], []
        for i, sc in enumerate(scenarios):
            for r in rows:
                if r["scenario"] == sc and r["sender"] == sender:
                    try:
                        v = float(r[field])
                    except ValueError:
                        continue
                    if math.isfinite(v) and v > 0:
                        xs.append(i + (k - 1.5) * width)
                        ys.append(v)
        ax.bar(xs, ys, width, label=sender, color=COLORS[sender])
        lowest = min([lowest] + ys)
    if math.isfinite(lowest):
        # Log bars need a floor; a decade below the smallest keeps heights comparable.
        ax.set_ylim(bottom=lowest / 10)
    ax.set_xticks(range(len(scenarios)))
    ax.set_xticklabels(scenarios)
    ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
axes[0].legend()
fig.suptitle("BIRD 2 receiver, one sender at a time (medians)")
fig.tight_layout()
fig.savefig(os.path.join(HERE, "whole.png"), dpi=110)
print("wrote", os.path.join(HERE, "whole.png"))
