"""Reference fixture for COCO polygon rasterisation (test/eval-polygon.test.ts), from pycocotools.

Writes test/fixtures/eval/polygons.json: a list of cases {height, width, polygons, single, union}
where `single[i]` is pycocotools' compressed RLE counts of `mask.frPyObjects([polygons[i]], h, w)`
and `union` those of `mask.merge(mask.frPyObjects(polygons, h, w))` (how COCO's annToRLE reads an
object's polygons). The polygons mix real-valued, integer and half-integer vertices, vertices
outside the image, repeated vertices, self-intersecting and collinear ones, and a few larger
star-shaped objects.

Run: bash scripts/setup-python.sh && .venv/bin/pip install pycocotools
     .venv/bin/python models/eval/generate_polygons.py
"""
import importlib.metadata
import json
import math
import os

import numpy as np
from pycocotools import mask as mask_utils

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "eval", "polygons.json")
rng = np.random.default_rng(20240611)


def random_polygon(h, w, kind):
    k = int(rng.integers(3, 9))
    side = max(h, w)
    if kind == "real":
        pts = rng.uniform(0, side, size=2 * k)
    elif kind == "outside":
        pts = rng.uniform(-4, side + 4, size=2 * k)
    elif kind == "integer":
        pts = rng.integers(-1, side + 2, size=2 * k).astype(float)
    elif kind == "half":
        pts = np.round(rng.uniform(0, side, size=2 * k) * 2) / 2
    elif kind == "repeated":
        pts = rng.uniform(0, side, size=2 * k)
        pts[2:4] = pts[0:2]
    else:  # collinear: all vertices on one line
        t = rng.uniform(0, 1, size=k)
        x0, y0, x1, y1 = rng.uniform(0, side, size=4)
        pts = np.stack([x0 + t * (x1 - x0), y0 + t * (y1 - y0)], axis=1).reshape(-1)
    return [round(float(v), 3) for v in pts]


def star(h, w, n):
    cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
    pts = []
    for i in range(n):
        a = 2 * math.pi * i / n
        r = (0.45 if i % 2 == 0 else 0.2) * min(h, w) * rng.uniform(0.8, 1.2)
        pts += [round(cx + r * math.cos(a), 2), round(cy + r * math.sin(a), 2)]
    return pts


def case(h, w, polygons):
    single = [mask_utils.frPyObjects([p], h, w)[0]["counts"].decode("ascii") for p in polygons]
    union = mask_utils.merge(mask_utils.frPyObjects(polygons, h, w))["counts"].decode("ascii")
    return {"height": h, "width": w, "polygons": polygons, "single": single, "union": union}


def main():
    kinds = ["real", "outside", "integer", "half", "repeated", "collinear"]
    cases = []
    for i in range(60):
        h, w = int(rng.integers(1, 24)), int(rng.integers(1, 24))
        polygons = [random_polygon(h, w, kinds[(i + j) % len(kinds)]) for j in range(1 + i % 3)]
        cases.append(case(h, w, polygons))
    for h, w in [(60, 80), (97, 41), (128, 128)]:
        cases.append(case(h, w, [star(h, w, 22), star(h, w, 14)]))
    with open(OUT, "w") as f:
        json.dump({"generator": "models/eval/generate_polygons.py",
                   "pycocotools": importlib.metadata.version("pycocotools"), "cases": cases}, f)
    print(f"wrote {OUT}: {len(cases)} cases")


if __name__ == "__main__":
    main()
