"""The table of bench/compare.sh from its results.jsonl (one line per run: case, threads, round, side, step_s,
peak_rss_mb, load). Per run: the median step time of its timed steps -> img/s. Per case and thread count: the
median over rounds of each side's img/s, the C++ process's peak RSS over its steps alone where measured, the C++/Python ratio of each round (median, min-max), peak RSS (max over
rounds), and the load average seen after the runs (min-max)."""
import json
import statistics
import sys
from collections import defaultdict

BATCH = {"fmnist": 32, "cifar": 8, "cifar-lpips": 4}
LABEL = {"fmnist": "bundled teacher (1.26M), B=32, L2", "cifar": "CIFAR-10 DDPM++ (55.7M), B=8, L2",
         "cifar-lpips": "CIFAR-10 DDPM++ (55.7M), B=4, LPIPS"}


def main():
    runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    groups = defaultdict(lambda: defaultdict(dict))
    for r in runs:
        groups[(r["case"], r["threads"])][r["round"]][r["side"]] = r
    print("| case | threads | rounds x steps | C++ img/s | Python img/s | ratio C++/Python (min-max) "
          "| C++ peak RSS | Python peak RSS | load avg | loss max rel. diff |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (case, threads), rounds in groups.items():
        b = BATCH[case]
        ips = {"cpp": [], "python": []}
        ratios, loads, loss_diff = [], [], 0.0
        rss = {"cpp": 0.0, "python": 0.0}
        steps_rss = 0.0
        n_steps = 0
        for _, sides in sorted(rounds.items()):
            if set(sides) != {"cpp", "python"}:
                continue
            round_ips = {}
            for side, r in sides.items():
                round_ips[side] = b / statistics.median(r["step_s"])
                ips[side].append(round_ips[side])
                rss[side] = max(rss[side], r["peak_rss_mb"])
                steps_rss = max(steps_rss, r.get("steps_peak_rss_mb", 0.0))
                loads.append(r["load"])
                n_steps = len(r["step_s"])
            ratios.append(round_ips["cpp"] / round_ips["python"])
            for a, p in zip(sides["cpp"]["loss_all"], sides["python"]["loss_all"]):
                loss_diff = max(loss_diff, abs(a - p) / abs(p))
        if not ratios:
            continue
        print(f"| {LABEL.get(case, case)} | {threads} | {len(ratios)} x {n_steps} "
              f"| {statistics.median(ips['cpp']):.2f} | {statistics.median(ips['python']):.2f} "
              f"| {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f}) "
              f"| {rss['cpp'] / 1024:.2f} GB{f' ({steps_rss / 1024:.2f} in steps)' if steps_rss else ''} "
              f"| {rss['python'] / 1024:.2f} GB | {min(loads):.1f}-{max(loads):.1f} "
              f"| {loss_diff:.1e} |")


if __name__ == "__main__":
    main()
