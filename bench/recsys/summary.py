"""Side by side: time to the same NDCG@10 (the lower of the two best
values) and top-10 queries per second, as ratios (implicit's time over
ours: above 1.0 means Tenfold is faster)."""
import json
import os
import sys


def first_at(curve, target):
    for c in curve:
        if c["ndcg@10"] >= target:
            return c
    return None


out = sys.argv[1]
ref = json.load(open(os.path.join(out, "implicit.json")))
best_ref = max(c["ndcg@10"] for c in ref["curve"])
print(f"implicit: best test NDCG@10 {best_ref:.4f} ({ref['config']})")
for name, label in (("tenfold.json", "tenfold (defaults)"), ("tenfold_uniform.json", "tenfold (uniform negatives)")):
    ours = json.load(open(os.path.join(out, name)))
    best_ours = max(c["ndcg@10"] for c in ours["curve"])
    target = min(best_ours, best_ref)
    a, b = first_at(ours["curve"], target), first_at(ref["curve"], target)
    print(f"{label}: best test NDCG@10 {best_ours:.4f} ({ours['config']})")
    print(f"  time to NDCG@10 >= {target:.4f}: tenfold {a['seconds']:.3f} s (epoch {a['epoch']}), implicit {b['seconds']:.3f} s (epoch {b['epoch']})")
    print(f"  training speed ratio (implicit time / tenfold time): {b['seconds'] / a['seconds']:.2f}x")
q_ours, q_ref = (json.load(open(os.path.join(out, f))) for f in ("queries.json", "implicit_queries.json"))
print(
    f"top-10 over {q_ours['items']} items: tenfold {q_ours['queries_per_s']:.0f}/s, implicit {q_ref['queries_per_s']:.0f}/s, "
    f"ratio {q_ours['queries_per_s'] / q_ref['queries_per_s']:.2f}x"
)
