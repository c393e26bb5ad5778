#!/usr/bin/env python3
"""Writes docs/RESULTS.md and its plots from the measured rows of scripts/results.sh (results.jsonl) and, when
present, the convergence runs of scripts/convergence.sh (convergence.jsonl beside it)."""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    if not os.path.exists(path):
        return []
    return [json.loads(line) for line in open(path) if line.strip()]


def fmt(x, digits=3):
    return "–" if x is None else f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:.0f}"


def is_raw(c):
    return c.get("ema", "none").startswith("none")


def ema_note(c):
    return "" if is_raw(c) else f", EMA {c['ema']}"


def main(jsonl, md_path, cpu):
    docs = os.path.dirname(md_path)
    res_dir = os.path.dirname(jsonl)
    rows = load(jsonl)
    conv = load(os.path.join(res_dir, "convergence.jsonl"))
    rel = os.path.relpath(res_dir, docs)

    # FD against network calls: teacher curves, students as points, the floor as a line.
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for kind, label, style in [("teacher-heun", "teacher, EDM Heun", "o-"), ("teacher-euler", "teacher, Euler", "s--")]:
        pts = sorted((r["result"]["nfe"], r["result"]["fd"]) for r in rows if r["kind"] == kind)
        if pts:
            ax.plot(*zip(*pts), style, label=label)
    for r in rows:
        if r["kind"] == "student":
            ax.plot([1], [r["result"]["fd"]], "*", markersize=12, label=r["row"])
    for recipe in sorted({c["recipe"] for c in conv}):  # each convergence recipe's best latest student
        last = min((c for c in conv if c["recipe"] == recipe), key=lambda c: (-c["minutes"], c["fd"]))
        ax.plot([1], [last["fd"]], "*", markersize=12,
                label=f"student {recipe}, {last['minutes']:.0f} min ({last['steps']} steps{ema_note(last)})")
        if r["kind"] == "floor":
            ax.axhline(r["result"]["fd"], color="gray", lw=0.8, ls=":", label=r["row"])
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("network calls per image")
    ax.set_ylabel("FD-FMNIST vs test set (lower is better)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(res_dir, "fd_vs_calls.png"))

    if conv:
        fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
        for recipe in sorted({c["recipe"] for c in conv}):
            pts = sorted((c["minutes"], c["fd"]) for c in conv if c["recipe"] == recipe and is_raw(c))
            ax.plot(*zip(*pts), "o-", label=recipe)
            for c in conv:
                if c["recipe"] == recipe and not is_raw(c):
                    ax.plot([c["minutes"]], [c["fd"]], "*", markersize=11, label=f"{recipe}, EMA {c['ema']} export")
        for r in rows:
            if r["row"] in ("teacher Heun 35 calls", "teacher Euler 8 calls"):
                ax.axhline(r["result"]["fd"], ls="--", lw=0.8, label=r["row"], color="gray" if "Heun" in r["row"] else "tan")
        ax.set_yscale("log")
        ax.set_xlabel("training minutes (wall clock, this CPU)")
        ax.set_ylabel("one-call FD-FMNIST")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(res_dir, "fd_vs_minutes.png"))

    n = next((r["result"].get("images") for r in rows if r["kind"] != "floor"), None)
    out = []
    w = out.append
    w("# Results\n")
    total_min = sum(r["result"].get("seconds", 0) for r in rows) / 60
    w("Measured on this project's CPU machine (" + cpu + "); regenerate with `scripts/results.sh` "
      f"(this table took {total_min:.0f} minutes of one core shared with two training runs; `RESULTS_IMAGES` and "
      "`THREADS` set the size). Every number below comes from "
      "`pidistill fid` and is stored with its full JSON line in [results/results.jsonl](results/results.jsonl).\n")
    w("**Metric.** FD-FMNIST: the Fréchet distance between Gaussians fitted to the 128 penultimate-layer "
      "features of the bundled Fashion-MNIST classifier (`models/fmnist-classifier.safetensors`, see "
      "[models/README.md](../models/README.md)), generated images against the **10,000 test images** "
      "(padded to 32x32 like the teacher's training images). It is not FID: Inception features cannot be had here, "
      "and the numbers are not comparable with FID values. Precision/recall: Kynkäänniemi et al. (k = 3) on the "
      "same features; IS-FMNIST: the Inception Score formula on the classifier's 10 class probabilities "
      "(at most 10; higher means confident and diverse classes).\n")
    w(f"**Images.** Every generated row uses {n} images, seeds 0-{(n or 1) - 1} (one latent per seed, EDM's "
      "convention), quantised to uint8 exactly like the PNG writer. The floor row is the first "
      f"{n} training images. Precision/recall use {n} features from each side. FD from {n} samples is biased "
      "upward against one from 50,000; compare rows with each other, not with other papers.\n")
    w("| row | network calls | FD-FMNIST | precision | recall | IS-FMNIST | seconds |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        x = r["result"]
        w(f"| {r['row']} | {x.get('nfe', '–')} | {fmt(x['fd'], 4)} | {fmt(x.get('precision'))} | "
          f"{fmt(x.get('recall'))} | {fmt(x.get('is_mean'))} | {fmt(x.get('seconds'), 3)} |")
    w("")
    w(f"![FD-FMNIST against network calls]({rel}/fd_vs_calls.png)\n")
    imgs = sorted(f for f in os.listdir(res_dir) if f.startswith("grid-") and f.endswith(".png"))
    if imgs:
        w("Sample grids, the first 64 seeds of each row (file names say which):\n")
        w("| | | | |")
        w("| --- | --- | --- | --- |")
        for i in range(0, len(imgs), 4):
            w("| " + " | ".join(f"`{f[5:-4]}`<br>![]({rel}/{f})" for f in imgs[i:i + 4]) + " |")
        w("")
    if conv:
        w("## Convergence: one-call FD-FMNIST against training time\n")
        w("From `scripts/convergence.sh` (each recipe trained in segments with bit-identical `--resume`, the "
          "exported student measured after each segment, same images and seeds as above). Both recipes use the "
          "bundled teacher, `--loss l2 --batch 32 --lr 2e-4`, one thread each, and ran at the same time on the "
          "2-core machine (with the teacher measurements above and builds beside them), so a minute here is a "
          "shared-machine minute: the steps column is the fair axis. `paper-l2-N250` at 10 minutes is the recipe "
          "of `make demo` (its default `DEMO_MINUTES=10`, L2, batch 32, N = 250).\n")
        w("| recipe | options |")
        w("| --- | --- |")
        for recipe in sorted({c["recipe"] for c in conv}):
            opts = next(c.get("options", "") for c in conv if c["recipe"] == recipe)
            w(f"| {recipe} | `{opts}` |")
        w("")
        w("| recipe | minutes | steps | weights | FD-FMNIST | precision | recall |")
        w("| --- | ---: | ---: | --- | ---: | ---: | ---: |")
        for c in sorted(conv, key=lambda c: (c["recipe"], c["minutes"], not is_raw(c))):
            weights = "raw" if is_raw(c) else f"EMA {c['ema']}"
            w(f"| {c['recipe']} | {fmt(c['minutes'], 4)} | {c['steps']} | {weights} | {fmt(c['fd'], 4)} | "
              f"{fmt(c.get('precision'))} | {fmt(c.get('recall'))} |")
        if any(c["minutes"] > 120 for c in conv):
            w("")
            w("Rows past 120 minutes: `schedule-l2-N8to250` continued with step targets (`--resume ... --steps S`, "
              "bit-identical to one run) while the machine was shared with builds and fuzzers, so its minutes are "
              "its own `stats.jsonl` `elapsed_s`. The EMA row is the same checkpoint exported with "
              "`pidistill distill --resume runs/convergence/schedule-l2-N8to250/*/training-state-003514.safetensors "
              "--steps 3514 --export-ema 0.999` (no further step); `--export-ema auto` exports the raw weights "
              "until the 0.999 average's horizon (1,000 steps) is a tenth of the run. That export is the bundled "
              "`models/fashion-mnist-pid-student.safetensors`.")
        w("")
        w(f"![FD-FMNIST against minutes]({rel}/fd_vs_minutes.png)\n")
        for f in sorted(os.listdir(res_dir)):
            if f.startswith("loss_bins-") and f.endswith(".png"):
                recipe = f[len("loss_bins-"):-4]
                w(f"**Loss per grid bin, {recipe}** (bin 0: t near 80, bin 7: t near 0.002; "
                  f"`scripts/plot_stats.py runs/convergence/{recipe}/*/stats.jsonl {rel}/{f}`):\n")
                w(f"![loss per bin]({rel}/{f})\n")
        for f in sorted(os.listdir(res_dir)):
            if f.startswith("trajectory-") and f.endswith(".png"):
                recipe = f[len("trajectory-"):-4]
                w(f"**Trajectory, {recipe}**: per seed, the student x_theta(z, t) (one call per column) above the "
                  "teacher's Heun trajectory, at t = 80, 20, 5, 1, 0.2, 0.002, each column scaled by 1/sqrt(1 + t^2) "
                  f"(`pidistill trajectory --student runs/convergence/{recipe}/*/student-final.safetensors "
                  f"--teacher models/fashion-mnist-ddpmpp-teacher.safetensors --seeds 0-3 --out {rel}/{f}`):\n")
                w(f"![trajectory]({rel}/{f})\n")
    open(md_path, "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "unknown CPU")
