#!/usr/bin/env python3
"""Draws a distill run's stats.jsonl as PNG curves: the loss in each of the 8 bins of the grid index against
the step (bin 0 = the highest noise levels, next to t = T = 80; bin 7 = the lowest, next to sigma_min), the
grid size N when a schedule refines it, and the FD lines of --fd-every when present.
Usage: scripts/plot_stats.py RUN/stats.jsonl OUT.png [TITLE]"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402


def main(stats_path, out_path, title=None):
    lines = [json.loads(l) for l in open(stats_path) if l.strip()]
    train = [l for l in lines if "loss_bins" in l]
    fd = [l for l in lines if "fd" in l]
    panels = 2 if fd else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.4 * panels, 4.2), dpi=110, squeeze=False)
    ax = axes[0][0]
    cmap = plt.get_cmap("viridis")
    for b in range(8):
        pts = [(l["step"], l["loss_bins"][b]) for l in train if l["loss_bins"][b] is not None]
        if pts:
            ax.plot(*zip(*pts), color=cmap(b / 7), lw=1, label=f"bin {b}" + (" (t near 80)" if b == 0 else
                                                                            " (t near 0.002)" if b == 7 else ""))
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("PID loss per sample, mean over the log interval")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    if any(l.get("N") != train[0].get("N") for l in train):
        ax2 = ax.twinx()
        ax2.step([l["step"] for l in train], [l["N"] for l in train], where="post", color="red", lw=0.8, alpha=0.6)
        ax2.set_ylabel("grid size N", color="red")
        ax2.set_yscale("log", base=2)
        ax2.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax2.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    if fd:
        ax = axes[0][1]
        ax.plot([l["step"] for l in fd], [l["fd"] for l in fd], "o-")
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel(f"one-call {fd[0].get('fd_metric', 'FD')} ({fd[0].get('fd_images', '?')} images)")
        ax.grid(True, which="both", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out_path)


if __name__ == "__main__":
    main(*sys.argv[1:4])
