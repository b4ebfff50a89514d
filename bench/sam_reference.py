"""PyTorch reference timings for `npm run bench` (bench/sam.mjs): transformers SamModel, fp32, eager,
on the same random sam-vit-base checkpoint and image omniseg is timed on, same thread count.

  encodeMs: SamProcessor preprocessing + get_image_embeddings (median of --runs)
  decodeMs: one point prompt through SamProcessor + SamModel(image_embeddings=...) + post_process_masks
            to the original image size, multimask (median of --runs x 5)
Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models" / "sam"))
from transformers import SamModel, SamProcessor  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model = SamModel.from_pretrained(args.model).eval()
    processor = SamProcessor.from_pretrained(args.model)
    image = Image.open(args.image).convert("RGB")
    w, h = image.size
    point = [[[w * 0.48, h * 0.40]]]

    with torch.no_grad():
        def encode():
            inputs = processor(images=image, return_tensors="pt")
            return inputs, model.get_image_embeddings(inputs["pixel_values"])

        def decode(inputs, emb):
            p = processor(images=image, input_points=point, input_labels=[[1]], return_tensors="pt")
            out = model(image_embeddings=emb, input_points=p["input_points"], input_labels=p["input_labels"],
                        multimask_output=True)
            return processor.image_processor.post_process_masks(
                out.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"])

        inputs, emb = encode()  # warm-up
        decode(inputs, emb)
        enc = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            inputs, emb = encode()
            enc.append((time.perf_counter() - t0) * 1e3)
        dec = []
        for _ in range(args.runs * 5):
            t0 = time.perf_counter()
            decode(inputs, emb)
            dec.append((time.perf_counter() - t0) * 1e3)

    print(json.dumps({
        "encodeMs": statistics.median(enc),
        "decodeMs": statistics.median(dec),
        "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
