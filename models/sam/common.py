"""Shared helpers for the SAM fixture generator and the parity harness.

Python is used only to produce reference data with Hugging Face transformers; omniseg never runs it.

Contents:
  - config builders: ``tiny_config()`` (the committed test fixture) and ``vit_config(name)`` (parity: sam-vit-base / -large / -huge);
  - ``make_processor()``: a ``SamProcessor`` around the PIL image processor (torchvision is absent);
  - ``build_model()``: ``SamModel`` with every parameter re-drawn from a seeded generator (``jitter_``);
  - raw little-endian writers (``write_f32`` / ``write_u8``);
  - parity measures and verdict (``rel_l2`` / ``max_abs`` / ``verdict``), GPU timing (``cuda_time``);
  - ``run_prompt()``: one prompt case through ``SamProcessor`` -> ``SamModel`` -> ``post_process_masks``;
  - a COCO compressed-RLE codec (``rle_string_to_counts`` / ``counts_to_rle_string`` / ``rle_decode``)
    with a self-check (``_self_check_rle``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[2]
# The team's shared folder (test images, CLIP tokenizer) beside the checkout; OMNISEG_SHARED names
# another with the same layout (on a GPU machine, where only the repo travels: .gpu/).
SHARED = Path(os.environ.get("OMNISEG_SHARED") or REPO_ROOT / ".." / "shared").resolve()
SHARED_IMAGES = SHARED / "images"


# --------------------------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------------------------

def tiny_config():
    """Small SAM that still has windowed + global attention and window padding (16 % 5 != 0)."""
    from transformers import SamConfig

    cfg = SamConfig(
        vision_config=dict(
            hidden_size=48,
            num_hidden_layers=3,
            num_attention_heads=3,
            mlp_dim=96,
            output_channels=32,
            image_size=128,
            patch_size=8,
            window_size=5,
            global_attn_indexes=[1],
            num_pos_feats=16,
        ),
        prompt_encoder_config=dict(hidden_size=32, image_size=128, patch_size=8, mask_input_channels=16),
        mask_decoder_config=dict(
            hidden_size=32,
            num_attention_heads=2,
            mlp_dim=64,
            num_hidden_layers=2,
            iou_head_hidden_dim=32,
            num_multimask_outputs=3,
        ),
    )
    check_config(cfg)
    return cfg


# facebook/sam-vit-{base,large,huge}: (hidden, layers, heads, global attention layers).  Everything
# else (MLP 4x hidden, window 14, 1024 px input, patch 16, 256 output channels) is shared and is
# SamConfig's default.  ref: segment-anything build_sam.py build_sam_vit_{b,l,h}
VIT_SHAPES = {
    "sam-vit-base": (768, 12, 12, [2, 5, 8, 11]),
    "sam-vit-large": (1024, 24, 16, [5, 11, 17, 23]),
    "sam-vit-huge": (1280, 32, 16, [7, 15, 23, 31]),
}


def vit_config(name: str = "sam-vit-base"):
    """The published facebook/sam-vit-* shapes (vision ViT-B/L/H, everything else SamConfig defaults)."""
    from transformers import SamConfig

    hidden, layers, heads, global_layers = VIT_SHAPES[name]
    cfg = SamConfig(
        vision_config=dict(
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            mlp_dim=4 * hidden,
            global_attn_indexes=global_layers,
            window_size=14,
            image_size=1024,
            patch_size=16,
            output_channels=256,
        ),
    )
    check_config(cfg)
    return cfg


def vit_base_config():
    """facebook/sam-vit-base shapes."""
    return vit_config("sam-vit-base")


def check_config(cfg) -> None:
    v, p, m = cfg.vision_config, cfg.prompt_encoder_config, cfg.mask_decoder_config
    dims = {
        "prompt_encoder.hidden_size": p.hidden_size,
        "vision.output_channels": v.output_channels,
        "2*vision.num_pos_feats": 2 * v.num_pos_feats,
        "mask_decoder.hidden_size": m.hidden_size,
    }
    if len(set(dims.values())) != 1:
        raise ValueError(f"inconsistent SAM dims: {dims}")
    if v.image_size != p.image_size or v.patch_size != p.patch_size:
        raise ValueError("vision and prompt-encoder image_size/patch_size differ")
    if v.image_size % v.patch_size:
        raise ValueError("image_size must be a multiple of patch_size")


def config_summary(cfg) -> dict:
    v, p, m = cfg.vision_config, cfg.prompt_encoder_config, cfg.mask_decoder_config
    grid = v.image_size // v.patch_size
    pad = (v.window_size - grid % v.window_size) % v.window_size
    return {
        "imageSize": v.image_size,
        "patchSize": v.patch_size,
        "embeddingSize": grid,
        "embeddingDim": v.output_channels,
        "lowResSize": 4 * grid,
        "visionHiddenSize": v.hidden_size,
        "visionLayers": v.num_hidden_layers,
        "visionHeads": v.num_attention_heads,
        "visionMlpDim": v.mlp_dim,
        "windowSize": v.window_size,
        "paddedWindowGrid": grid + pad,
        "globalAttnIndexes": list(v.global_attn_indexes),
        "numPosFeats": v.num_pos_feats,
        "maskInputChannels": p.mask_input_channels,
        "decoderHiddenSize": m.hidden_size,
        "decoderHeads": m.num_attention_heads,
        "decoderMlpDim": m.mlp_dim,
        "decoderLayers": m.num_hidden_layers,
        "iouHeadHiddenDim": m.iou_head_hidden_dim,
        "iouHeadDepth": m.iou_head_depth,
        "numMultimaskOutputs": m.num_multimask_outputs,
        "layerNormEps": v.layer_norm_eps,
    }


# --------------------------------------------------------------------------------------------
# Processor
# --------------------------------------------------------------------------------------------

def make_processor(longest_edge: int, mask_longest_edge: int):
    """SamProcessor with the PIL image processor (the torchvision one is unavailable here)."""
    from transformers import SamProcessor
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    ip = SamImageProcessorPil(
        size={"longest_edge": longest_edge},
        pad_size={"height": longest_edge, "width": longest_edge},
        mask_size={"longest_edge": mask_longest_edge},
        mask_pad_size={"height": mask_longest_edge, "width": mask_longest_edge},
    )
    return SamProcessor(image_processor=ip)


def save_processor(processor, directory) -> None:
    """Write processor_config.json (transformers 5 layout) AND preprocessor_config.json (the flat
    layout the published facebook/sam-vit-* checkpoints ship, which omniseg reads)."""
    processor.save_pretrained(directory)
    processor.image_processor.save_pretrained(directory)
    for name in ("processor_config.json", "preprocessor_config.json"):
        if not (Path(directory) / name).is_file():
            raise RuntimeError(f"{name} was not written")


# --------------------------------------------------------------------------------------------
# Model construction with non-degenerate random weights
# --------------------------------------------------------------------------------------------

# Standard deviations used by jitter_ (documented in the generated fixtures' docstring).
POS_FREQ_STD = 1.0  # SamPositionalEmbedding Gaussian frequency matrix (original SAM: scale 1.0)
ABS_POS_STD = 0.5  # vision pos_embed (zero-initialised by default)
REL_POS_STD = 0.25  # rel_pos_h / rel_pos_w (zero-initialised by default)
EMBED_STD = 1.0  # nn.Embedding tables (tokens, point/no-mask embeddings)
BIAS_STD = 0.1  # Linear / Conv biases
LN_W_STD = 0.1  # LayerNorm weight = 1 + N(0, LN_W_STD)
LN_B_STD = 0.1  # LayerNorm bias
HYPER_OUT_GAIN = 4.0  # mask hypernetwork output layers: logits of a few units (like trained SAM),
#                        so few pixels sit near the 0 threshold


@torch.no_grad()
def jitter_(model: nn.Module, seed: int) -> None:
    """Re-draw every parameter of a SamModel from a seeded generator so no path is zero/identity.

    The default HF init is degenerate for our purpose (vision weights ~1e-10, rel_pos and pos_embed
    all zero, LayerNorm = identity, biases zero).  Weights of Linear/Conv/ConvTranspose get
    N(0, 1/fan_in) (unit-variance activations), biases N(0, 0.1^2), LayerNorm weight 1+N(0, 0.1^2),
    bias N(0, 0.1^2), embeddings N(0, 1) (mask hypernetwork proj_out weights x4 so the mask logits
    are a few units, not ~1), the positional-encoding frequency matrix N(0, 1) (the HF
    default would be N(0, (hidden/2)^2) which makes sin/cos of huge arguments - ill-conditioned in
    fp32), rel_pos N(0, 0.25^2), abs pos_embed N(0, 0.5^2).  Deterministic for a given seed and
    torch version (the generator is consumed in named_modules() order).
    """
    from transformers.models.sam.modeling_sam import (
        SamPositionalEmbedding,
        SamVisionAttention,
        SamVisionEncoder,
    )

    gen = torch.Generator().manual_seed(seed)
    touched: set[int] = set()

    def draw(p: torch.Tensor, std: float, mean: float = 0.0) -> None:
        if id(p) in touched:  # tied parameter already drawn
            return
        t = torch.randn(p.shape, generator=gen, dtype=torch.float32) * std + mean
        p.copy_(t.to(p.dtype))
        touched.add(id(p))

    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            gain = HYPER_OUT_GAIN if ("output_hypernetworks_mlps" in name and name.endswith("proj_out")) else 1.0
            draw(mod.weight, gain / math.sqrt(mod.in_features))
            if mod.bias is not None:
                draw(mod.bias, BIAS_STD)
        elif isinstance(mod, nn.ConvTranspose2d):
            kh, kw = mod.kernel_size
            sh, sw = mod.stride
            fan_in = mod.in_channels * max(1, (kh * kw) // (sh * sw))
            draw(mod.weight, 1.0 / math.sqrt(fan_in))
            if mod.bias is not None:
                draw(mod.bias, BIAS_STD)
        elif isinstance(mod, nn.Conv2d):
            kh, kw = mod.kernel_size
            draw(mod.weight, 1.0 / math.sqrt(mod.in_channels * kh * kw))
            if mod.bias is not None:
                draw(mod.bias, BIAS_STD)
        elif isinstance(mod, nn.LayerNorm):  # includes SamLayerNorm
            draw(mod.weight, LN_W_STD, 1.0)
            draw(mod.bias, LN_B_STD)
        elif isinstance(mod, nn.Embedding):
            draw(mod.weight, EMBED_STD)
        elif isinstance(mod, SamPositionalEmbedding):
            draw(mod.positional_embedding, POS_FREQ_STD)
        elif isinstance(mod, SamVisionAttention):
            if mod.use_rel_pos:
                draw(mod.rel_pos_h, REL_POS_STD)
                draw(mod.rel_pos_w, REL_POS_STD)
        elif isinstance(mod, SamVisionEncoder):
            if mod.pos_embed is not None:
                draw(mod.pos_embed, ABS_POS_STD)

    missing = [n for n, p in model.named_parameters(remove_duplicate=False) if id(p) not in touched]
    if missing:
        raise RuntimeError(f"jitter_ left parameters untouched: {missing}")


def build_model(cfg, seed: int):
    from transformers import SamModel

    torch.manual_seed(seed)
    model = SamModel(cfg)
    jitter_(model, seed)
    # The prompt encoder's positional embedding is tied to shared_image_embedding; keep it so.
    a = model.shared_image_embedding.positional_embedding
    b = model.prompt_encoder.shared_embedding.positional_embedding
    if not torch.equal(a, b):
        raise RuntimeError("shared positional embedding is not tied")
    return model.eval()


# --------------------------------------------------------------------------------------------
# Raw writers
# --------------------------------------------------------------------------------------------

def add_cli_arguments(ap, bench: str) -> None:
    """The options both parity scripts take: what runs the CLI and how (`bench`: the npm script
    that calls --prepare-only)."""
    ap.add_argument("--reference-only", action="store_true", help="only build the model and run the reference")
    ap.add_argument("--prepare-only", action="store_true",
                    help=f"only build the model and write the test images (used by `{bench}`)")
    ap.add_argument("--omniseg", default="node dist/lib/cli.js",
                    help='command prefix that runs the CLI (default: "node dist/lib/cli.js", run in the repo root)')
    ap.add_argument("--threads", type=int, default=None, help="passed to the CLI as --threads N")
    ap.add_argument("--cpu-matmul", choices=["bf16x3", "fp32"], default=None,
                    help="passed to the CLI as --cpu-matmul (default: the CLI's, bf16x3 where the CPU has AMX)")
    ap.add_argument("--device", choices=["cpu", "cuda", "auto"], default=None,
                    help="passed to the CLI as --device (cuda: fail unless the CUDA build runs it)")
    ap.add_argument("--cache", type=Path, default=REPO_ROOT / ".cache" / "parity")


def cli_options(args) -> list[str]:
    """The CLI flags `add_cli_arguments`' options ask for."""
    opts = ["--threads", str(args.threads)] if args.threads else []
    if args.cpu_matmul:
        opts += ["--cpu-matmul", args.cpu_matmul]
    if args.device:
        opts += ["--device", args.device]
    return opts


def write_f32(path: Path, arr) -> tuple[int, ...]:
    if isinstance(arr, torch.Tensor):
        arr = arr.detach().cpu().numpy()
    a = np.ascontiguousarray(np.asarray(arr, dtype="<f4"))
    if not np.all(np.isfinite(a)):
        raise ValueError(f"non-finite values for {path}")
    Path(path).write_bytes(a.tobytes(order="C"))
    return tuple(a.shape)


def write_u8(path: Path, arr) -> tuple[int, ...]:
    if isinstance(arr, torch.Tensor):
        arr = arr.detach().cpu().numpy()
    a = np.ascontiguousarray(np.asarray(arr, dtype=np.uint8))
    Path(path).write_bytes(a.tobytes(order="C"))
    return tuple(a.shape)


def read_f32(path: Path, shape=None) -> np.ndarray:
    a = np.frombuffer(Path(path).read_bytes(), dtype="<f4").astype(np.float32)
    return a.reshape(shape) if shape is not None else a


# --------------------------------------------------------------------------------------------
# Parity measures and verdict (models/sam/parity.py, models/clipseg/parity.py)
# --------------------------------------------------------------------------------------------

def rel_l2(ours: np.ndarray, ref: np.ndarray) -> float:
    """||ours - ref|| / ||ref|| in float64 (the plain difference norm when ref is all zeros)."""
    ours, ref = ours.astype(np.float64), ref.astype(np.float64)
    den = np.linalg.norm(ref.ravel())
    return float(np.linalg.norm((ours - ref).ravel()) / (den if den > 0 else 1.0))


def max_abs(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(ours.astype(np.float64) - ref.astype(np.float64))))


def verdict(failures: list[str]) -> int:
    """Prints the failures (or PASS) and returns the exit status."""
    if failures:
        print("\nFAILED:")
        for f in failures:
            print("  - " + f)
        return 1
    print("PASS")
    return 0


# --------------------------------------------------------------------------------------------
# Reference inference for one prompt case
# --------------------------------------------------------------------------------------------

@torch.no_grad()
def run_prompt(model, processor, image, embedding, *, points=None, labels=None, boxes=None,
               mask_input=None, multimask=True):
    """Run one prompt set group exactly as a transformers user would.

    points: [P][N][2] pixel (x, y) in the original image, labels: [P][N], boxes: [P][4] or None,
    mask_input: [64,64]-like low-res logits (numpy/torch) or None.
    Returns dict(lowres [P,M,L,L] f32, iou [P,M] f32, masks [P,M,H,W] bool, inputs=BatchEncoding).
    """
    kwargs = {}
    if points is not None:
        kwargs["input_points"] = [points]  # image level
        if labels is not None:
            kwargs["input_labels"] = [labels]
    if boxes is not None:
        kwargs["input_boxes"] = [boxes]
    inputs = processor(images=image, return_tensors="pt", **kwargs)
    fwd = dict(image_embeddings=embedding, multimask_output=multimask)
    for k in ("input_points", "input_labels", "input_boxes"):
        if k in inputs:
            fwd[k] = inputs[k]
    if mask_input is not None:
        m = torch.as_tensor(np.asarray(mask_input, dtype=np.float32))
        fwd["input_masks"] = m.reshape(1, 1, *m.shape[-2:])
    out = model(**fwd)
    masks = processor.image_processor.post_process_masks(
        out.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"]
    )[0]
    upsampled = processor.image_processor.post_process_masks(
        out.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"], binarize=False
    )[0]
    assert torch.equal(upsampled > 0, masks)
    return {
        "lowres": out.pred_masks[0].float().numpy(),  # [P, M, L, L]
        "iou": out.iou_scores[0].float().numpy(),  # [P, M]
        "masks": masks.numpy().astype(bool),  # [P, M, H, W]
        "upsampled": upsampled.float().numpy(),  # [P, M, H, W] logits before the > 0
        "inputs": inputs,
    }


# --------------------------------------------------------------------------------------------
# COCO compressed RLE (pycocotools maskApi.c rleToString / rleFrString), column-major counts
# --------------------------------------------------------------------------------------------

def rle_string_to_counts(s: str) -> list[int]:
    """Decode a COCO compressed RLE string into run lengths.

    Each count is a little-endian sequence of 6-bit chars (value = ord(ch) - 48): 5 payload bits,
    bit 0x20 = "more chars follow"; the last char's bit 0x10 is the sign (two's complement).
    From the 4th count on (index > 2) the stored value is a delta from the count two positions back.
    """
    counts: list[int] = []
    p = 0
    n = len(s)
    while p < n:
        x = 0
        k = 0
        more = True
        while more:
            if p >= n:
                raise ValueError("truncated RLE string")
            c = ord(s[p]) - 48
            if c < 0 or c > 63:
                raise ValueError(f"bad RLE char {s[p]!r}")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def counts_to_rle_string(counts: list[int]) -> str:
    """Inverse of rle_string_to_counts (used to unit-check the decoder)."""
    out = []
    for i, cnt in enumerate(counts):
        x = int(cnt)
        if i > 2:
            x -= int(counts[i - 2])
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift, like C on signed long
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def mask_to_counts(mask: np.ndarray) -> list[int]:
    """Column-major run lengths of a [H, W] binary mask, starting with a (possibly empty) 0-run."""
    flat = np.asarray(mask, dtype=bool).flatten(order="F")
    counts: list[int] = []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    if flat.size and flat[0]:
        counts.append(0)
    counts.extend(int(b - a) for a, b in zip(bounds[:-1], bounds[1:]))
    return counts


def rle_decode(rle: dict) -> np.ndarray:
    """{'size': [H, W], 'counts': str | list[int]} -> bool [H, W]."""
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, (bytes, bytearray)):
        counts = counts.decode("ascii")
    if isinstance(counts, str):
        counts = rle_string_to_counts(counts)
    total = sum(counts)
    if total != h * w:
        raise ValueError(f"RLE counts sum to {total}, expected {h * w}")
    flat = np.zeros(h * w, dtype=bool)
    pos = 0
    val = False
    for c in counts:
        if c < 0:
            raise ValueError("negative RLE count")
        if val:
            flat[pos:pos + c] = True
        pos += c
        val = not val
    return flat.reshape((w, h)).T  # column-major


def _self_check_rle() -> None:
    # Hand-checked vectors of the 6-bit encoding (delta rule, sign bit, multi-char values).
    vectors = [
        ([0, 6, 1, 3], "061M"),
        ([0, 6, 1], "061"),
        ([0, 6, 1, 1], "061K"),
        ([0, 6, 1, 5], "061O"),
        ([0, 6, 1, 6], "0610"),
        ([0, 1, 1, 2, 1, 3, 1, 4, 1], "011101010"),
        ([0, 1024], "0PP1"),
        ([16], "`0"),
        ([5, 3, 2, 1], "532N"),
        ([5, 40, 2, 1], "5X12iN"),
        ([15], "?"),
    ]
    for counts, s in vectors:
        assert counts_to_rle_string(counts) == s, (counts, counts_to_rle_string(counts), s)
        assert rle_string_to_counts(s) == counts, (s, rle_string_to_counts(s), counts)
    rng = np.random.default_rng(1234)
    for h, w in [(1, 1), (3, 5), (17, 23), (100, 150), (300, 451)]:
        for density in (0.0, 0.02, 0.5, 0.98, 1.0):
            m = rng.random((h, w)) < density
            if density == 0.5:  # blobby mask with long runs too
                blocks = rng.random((h // 8 + 1, w // 8 + 1)) < 0.5
                m = np.kron(blocks, np.ones((8, 8), bool))[:h, :w]
            counts = mask_to_counts(m)
            if h * w > 1:  # cross-check the run lengths against transformers' own encoder
                from transformers.models.sam.image_processing_pil_sam import _mask_to_rle

                assert _mask_to_rle(torch.from_numpy(m)[None])[0]["counts"] == counts, (h, w, density)
            s = counts_to_rle_string(counts)
            back = rle_decode({"size": [h, w], "counts": s})
            assert back.shape == (h, w) and np.array_equal(back, m), (h, w, density)


def positive_fraction(x) -> float:
    a = np.asarray(x)
    return float((a > 0).mean()) if a.dtype != bool else float(a.mean())


def cuda_time(fn, iters: int) -> float:
    """Median wall time of fn() in ms over iters runs on the GPU (synchronised), after a warm-up."""
    import statistics
    import time

    fn()
    torch.cuda.synchronize()
    ms = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ms.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ms)
