"""Reference fixtures for the evaluation harness (test/eval-coco.test.ts), from pycocotools.

Writes test/fixtures/eval/coco.json:
  masks:  small binary masks (row-major "0"/"1" strings) with pycocotools' compressed RLE counts,
          the uncompressed run lengths (and pycocotools' string for them via frPyObjects) and area;
  pairs:  pycocotools' iou (iscrowd 0) and merge (union, intersection) of two masks;
  eval:   a ground-truth / prediction set (JSONL and JSON strings, predictions shuffled, counts in
          both forms, a missing prediction, no-target samples) with the metrics computed here
          with numpy from pycocotools-decoded masks, following the definitions in issue #5.

Run: bash scripts/setup-python.sh && .venv/bin/pip install pycocotools
     .venv/bin/python models/eval/generate_fixtures.py
"""
import importlib.metadata
import json
import os

import numpy as np
from pycocotools import mask as mask_utils

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "eval", "coco.json")
rng = np.random.default_rng(20240605)


def bits(m):
    return "".join("1" if v else "0" for v in m.reshape(-1))


def encode(m):
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def runs(m):
    """Uncompressed COCO counts: column-major run lengths starting with zeros."""
    flat = m.reshape(-1, order="F").astype(np.uint8)
    counts, value, run = [], 0, 0
    for v in flat:
        if v != value:
            counts.append(run)
            run, value = 0, v
        run += 1
    counts.append(run)
    return counts


def random_mask(h, w, kind):
    if kind == "empty":
        return np.zeros((h, w), bool)
    if kind == "full":
        return np.ones((h, w), bool)
    if kind == "noise":
        return rng.random((h, w)) < rng.uniform(0.2, 0.8)
    # blobs: a few discs and rectangles
    m = np.zeros((h, w), bool)
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(rng.integers(1, 4)):
        if rng.random() < 0.5:
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(1, max(2, max(h, w) / 2))
            m |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        else:
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            m[y0 : y0 + rng.integers(1, h + 1), x0 : x0 + rng.integers(1, w + 1)] = True
    return m


def main():
    sizes = [(1, 1), (3, 4), (7, 5), (16, 12), (33, 20), (64, 48)]
    kinds = ["empty", "full", "noise", "blobs", "blobs"]
    masks = []
    for h, w in sizes:
        for kind in kinds:
            m = random_mask(h, w, kind)
            rle = encode(m)
            raw = runs(m)
            from_raw = mask_utils.frPyObjects({"size": [h, w], "counts": raw}, h, w)
            assert mask_utils.area(rle) == m.sum()
            masks.append({
                "height": h, "width": w, "bits": bits(m), "rle": rle, "uncompressed": raw,
                "fromUncompressed": from_raw["counts"].decode("ascii"), "area": int(mask_utils.area(rle)),
            })

    pairs = []
    by_size = {}
    for i, m in enumerate(masks):
        by_size.setdefault((m["height"], m["width"]), []).append(i)
    for idx in by_size.values():
        for a in idx:
            for b in idx:
                ra, rb = masks[a]["rle"], masks[b]["rle"]
                ea = {"size": ra["size"], "counts": ra["counts"].encode()}
                eb = {"size": rb["size"], "counts": rb["counts"].encode()}
                iou = float(mask_utils.iou([ea], [eb], [0])[0][0])
                union = mask_utils.merge([ea, eb], intersect=False)["counts"].decode("ascii")
                inter = mask_utils.merge([ea, eb], intersect=True)["counts"].decode("ascii")
                pairs.append({"a": a, "b": b, "iou": iou, "union": union, "intersection": inter})

    # An evaluation set: 40 samples of 24x32, a quarter without a target.
    h, w = 24, 32
    gt_records, pred_records, per_sample = [], [], []
    for s in range(40):
        sid = f"s{s}" if s % 3 else s  # string and number ids
        no_target = s % 4 == 0
        gt_masks = [] if no_target else [random_mask(h, w, "blobs") for _ in range(rng.integers(1, 3))]
        choice = rng.random()
        if choice < 0.2:
            pred_masks = []
        elif no_target or choice < 0.4:
            pred_masks = [random_mask(h, w, "blobs")]
        else:  # a perturbed copy of the ground truth
            g = np.logical_or.reduce(gt_masks)
            pred_masks = [np.logical_xor(g, rng.random((h, w)) < rng.uniform(0, 0.3))]
        gt_u = np.zeros((h, w), bool)
        for m in gt_masks:
            gt_u |= mask_utils.decode(mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))).astype(bool)
        missing = s == 7
        pred_u = np.zeros((h, w), bool)
        if not missing:
            for m in pred_masks:
                pred_u |= m
        gt_records.append({"id": sid, "height": h, "width": w, "masks": [encode(m) for m in gt_masks]})
        if not missing:
            pred_records.append({
                "id": sid,
                "masks": [
                    encode(m) if (s + k) % 2 else {"size": [h, w], "counts": runs(m)}
                    for k, m in enumerate(pred_masks)
                ],
            })
        inter, union = int((gt_u & pred_u).sum()), int((gt_u | pred_u).sum())
        target = bool(gt_u.any())
        empty = not pred_u.any()
        iou = inter / union if target else (1.0 if empty else 0.0)
        per_sample.append({"id": sid, "target": target, "empty": empty, "intersection": inter, "union": union, "iou": iou})
    order = rng.permutation(len(pred_records))
    pred_records = [pred_records[i] for i in order]

    targets = [p for p in per_sample if p["target"]]
    no_targets = [p for p in per_sample if not p["target"]]
    metrics = {
        "cIoU": sum(p["intersection"] for p in per_sample) / sum(p["union"] for p in per_sample),
        "gIoU": sum(p["iou"] for p in per_sample) / len(per_sample),
        "precision": {t: sum(p["iou"] > float(t) for p in targets) / len(targets) for t in ["0.5", "0.6", "0.7", "0.8", "0.9"]},
        "nAcc": sum(p["empty"] for p in no_targets) / len(no_targets),
        "tAcc": sum(not p["empty"] for p in targets) / len(targets),
        "count": len(per_sample),
        "mIoU": sum(p["iou"] for p in targets) / len(targets),
    }
    evaluation = {
        "gtJsonl": "".join(json.dumps(r) + "\n" for r in gt_records),
        "predJson": json.dumps(pred_records),
        "samples": per_sample,
        "metrics": metrics,
    }

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"generator": "models/eval/generate_fixtures.py", "pycocotools": importlib.metadata.version("pycocotools"),
                   "masks": masks, "pairs": pairs, "eval": evaluation}, f)
        f.write("\n")
    print(f"wrote {OUT}: {len(masks)} masks, {len(pairs)} pairs, {len(per_sample)} eval samples")


if __name__ == "__main__":
    main()
