#!/usr/bin/env python3
"""Recomputes AUC, WR@K and ASH@K from a resflow predictions CSV, independently of resflow's code
(plain Python, brute-force pair counting for AUC). Prints JSON: {"auc": {task: v}, "wrecall": {k:
{"macro", "micro"}}, "ash": {k: {...}}}.
Usage: recompute_metrics.py PREDICTIONS.csv TASK:LABEL[,TASK:LABEL...] K[,K...] WEIGHT_LABEL ASH_LABEL"""
import csv, json, sys
from collections import defaultdict

path, tasks_spec, ks_spec, weight_label, ash_label = sys.argv[1:6]
tasks = [t.split(':') for t in tasks_spec.split(',')]
ks = [int(k) for k in ks_spec.split(',')]
rows = list(csv.DictReader(open(path)))

def auc(scores, labels):
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = [s for s, y in zip(scores, labels) if y == 0]
    wins = 0.0
    for p in pos:
        for n in neg:
            wins += 1.0 if p > n else 0.5 if p == n else 0.0
    return wins / (len(pos) * len(neg))

out = {"auc": {}, "wrecall": {}, "ash": {}}
exposed = [r for r in rows if r["stage"] == "exposure"]  # the quickstart tasks learn from exposures
for task, label in tasks:
    out["auc"][task] = auc([float(r["p_" + task]) for r in exposed], [int(r[label]) for r in exposed])

by_request = defaultdict(list)
for i, r in enumerate(rows):
    by_request[r["request"]].append((i, r))
for k in ks:
    wr_sum = wr_n = wr_top = wr_all = 0.0
    ash_sum = ash_n = ash_top = ash_all = 0.0
    for items in by_request.values():
        ranked = sorted(items, key=lambda ir: (-float(ir[1]["fused"]), ir[0]))
        top = ranked[:k]
        w_all = sum(float(r[weight_label]) for _, r in items)
        w_top = sum(float(r[weight_label]) for _, r in top)
        if w_all > 0:
            wr_sum += w_top / w_all
            wr_n += 1
        wr_top += w_top
        wr_all += w_all
        t_all = sum(int(r[ash_label]) for _, r in items)
        t_top = sum(int(r[ash_label]) for _, r in top)
        if t_all > 0:
            ash_sum += t_top / t_all
            ash_n += 1
        ash_top += t_top
        ash_all += t_all
    out["wrecall"][k] = {"macro": wr_sum / wr_n, "micro": wr_top / wr_all}
    out["ash"][k] = {"macro": ash_sum / ash_n, "micro": ash_top / ash_all}
print(json.dumps(out))
