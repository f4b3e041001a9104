"""The recommendation benchmark's reference: the `implicit` library's BPR
(PyPI implicit 0.7.2, in its own virtual environment) on the split Tenfold
wrote, tested with the same protocol (full ranking, training and
validation items masked, NDCG@10 with binary gains), and top-10 queries
over the same synthetic 100k-item catalogue.

    python implicit_bpr.py OUT_DIR train ITERATIONS THREADS
    python implicit_bpr.py OUT_DIR queries

Writes OUT_DIR/implicit.json (the NDCG@10 curve against cumulative
training seconds; the test ranking itself is not timed) and
OUT_DIR/implicit_queries.json.
"""
import json
import os
import sys
import time

import numpy as np
import scipy.sparse as sp
from implicit.cpu.bpr import BayesianPersonalizedRanking


def load(path):
    return np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)


def matrix(rows, shape):
    return sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows[:, 0], rows[:, 1])), shape=shape)


def ndcg_at_10(users, items, masked, test):
    scores = users @ items.T
    scores[masked.nonzero()] = -np.inf
    top = np.argpartition(-scores, 10, axis=1)[:, :10]
    order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
    top = np.take_along_axis(top, order, axis=1)
    discounts = 1.0 / np.log2(np.arange(2, 12))
    total, n = 0.0, 0
    for u in range(scores.shape[0]):
        held = test.indices[test.indptr[u]:test.indptr[u + 1]]
        if len(held) == 0:
            continue
        hits = np.isin(top[u], held)
        ideal = discounts[: min(len(held), 10)].sum()
        total += (discounts * hits).sum() / ideal
        n += 1
    return total / n


def train_curve(out, iterations, threads):
    train, valid, test = (load(os.path.join(out, f"{p}.csv")) for p in ("train", "valid", "test"))
    shape = (int(max(a[:, 0].max() for a in (train, valid, test))) + 1, int(max(a[:, 1].max() for a in (train, valid, test))) + 1)
    x = matrix(train, shape)
    masked = matrix(np.vstack([train, valid]), shape)
    held = matrix(test, shape)
    # The library's defaults (100 factors, lr 0.01, L2 0.01), its own threads.
    model = BayesianPersonalizedRanking(iterations=iterations, num_threads=threads, random_state=42)
    curve, spent, mark = [], [0.0], [time.perf_counter()]

    def callback(epoch, *_):
        spent[0] += time.perf_counter() - mark[0]
        ndcg = ndcg_at_10(model.user_factors, model.item_factors, masked, held)
        curve.append({"epoch": epoch + 1, "seconds": spent[0], "ndcg@10": float(ndcg)})
        mark[0] = time.perf_counter()

    mark[0] = time.perf_counter()
    model.fit(x, show_progress=False, callback=callback)
    best = max(c["ndcg@10"] for c in curve)
    print(f"implicit bpr: best test NDCG@10 {best:.4f} in {iterations} iterations, {spent[0]:.2f} s of training ({threads} threads)")
    config = {"factors": model.factors, "lr": model.learning_rate, "regularization": model.regularization, "threads": threads}
    with open(os.path.join(out, "implicit.json"), "w") as f:
        json.dump({"config": config, "curve": curve}, f, indent=1)


def queries(out, threads):
    spec = json.load(open(os.path.join(out, "queries.json")))
    items, dim = spec["items"], spec["dim"]
    users = np.fromfile(os.path.join(out, "catalogue_users.f32"), dtype="<f4").reshape(-1, dim)
    item_factors = np.fromfile(os.path.join(out, "catalogue_items.f32"), dtype="<f4").reshape(items, dim)
    seen = matrix(load(os.path.join(out, "catalogue_seen.csv")), (users.shape[0], items))
    model = BayesianPersonalizedRanking(factors=dim, num_threads=threads)
    model.user_factors, model.item_factors = users, item_factors
    model.recommend(0, seen[0], N=10, filter_already_liked_items=True)
    start, answered = time.perf_counter(), 0
    while time.perf_counter() - start < 3.0:
        for u in range(100):
            ids, _ = model.recommend(u, seen[u], N=10, filter_already_liked_items=True)
            answered += len(ids) // 10
    qps = answered / (time.perf_counter() - start)
    print(f"implicit top-10 over {items} items: {qps:.0f} queries/s (one user per call)")
    with open(os.path.join(out, "implicit_queries.json"), "w") as f:
        json.dump({"items": items, "dim": dim, "queries_per_s": qps, "threads": threads}, f, indent=1)


if __name__ == "__main__":
    if sys.argv[2] == "train":
        train_curve(sys.argv[1], int(sys.argv[3]), int(sys.argv[4]))
    else:
        queries(sys.argv[1], 1)
