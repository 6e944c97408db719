#!/usr/bin/python3
"""scikit-learn side of `npm run bench:metrics-compare`: reads the binary file that
bench/metrics-compare.ts wrote (header: 8-byte magic b"RFAUC1\\0\\0", uint32 little-endian row count
n, 4 bytes padding; then float32 scores[n]; then uint8 labels[n]), times roc_auc_score on it
(median of --runs calls) and prints one JSON line {auc, seconds, runs, read_seconds, sklearn, numpy,
rows, blas}; blas names the BLAS numpy loaded and its kernel set (threadpoolctl), or is null without it.

  /usr/bin/python3 bench/metrics_sklearn.py FILE [--runs 3]
"""
import argparse
import json
import statistics
import time

import numpy as np
import sklearn
from sklearn.metrics import roc_auc_score

MAGIC = b"RFAUC1\0\0"


def describe_blas():
    """The BLAS library numpy loaded, its version and kernel set, or None without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not libs:
        return "none loaded"
    return "; ".join(f"{i.get('internal_api')} {i.get('version')}, kernel set {i.get('architecture')}" for i in libs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    t0 = time.perf_counter()
    with open(args.file, "rb") as f:
        head = f.read(16)
    if head[:8] != MAGIC:
        raise SystemExit(f"{args.file}: not a metrics-compare file")
    n = int(np.frombuffer(head, dtype="<u4", count=1, offset=8)[0])
    scores = np.fromfile(args.file, dtype="<f4", count=n, offset=16)
    labels = np.fromfile(args.file, dtype=np.uint8, count=n, offset=16 + 4 * n)
    read_s = time.perf_counter() - t0
    secs = []
    value = None
    for _ in range(args.runs):
        t0 = time.perf_counter()
        value = roc_auc_score(labels, scores)
        secs.append(time.perf_counter() - t0)
    print(json.dumps({"auc": float(value), "seconds": statistics.median(secs), "runs": secs, "read_seconds": read_s,
                      "sklearn": sklearn.__version__, "numpy": np.__version__, "rows": n, "blas": describe_blas()}))


if __name__ == "__main__":
    main()
