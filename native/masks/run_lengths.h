// COCO run lengths ↔ row-major binary masks, without walking down columns (a cache line a pixel):
// counts → mask (and a crop of it) for the native tracer, mask-prompt coverage, visual prompts
// and PNGs; mask → counts (Mask.toRLE of pixels) and the column boundaries that the decoder's
// ops::maskBoundaries uses on the CPU; and a mask's bounds. Plain host code (native/addon/rasters.cc,
// ops/cpu).
// ref: pycocotools common/maskApi.c rleEncode / rleDecode (the same runs, column-major)
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace omniseg::masks {

// The row-major 0/1 mask [height, width] of COCO run lengths (column-major, alternating runs of
// zeros and ones, starting with zeros). Throws a RangeError unless they sum to width · height.
std::vector<uint8_t> countsToMask(const uint32_t* counts, size_t n, int64_t height, int64_t width);
// The columns [x0, x1) and rows [y0, y1) of that mask, row-major [y1 - y0, x1 - x0], decoded from
// the runs without the rest of it. Throws a RangeError as countsToMask, or for a crop outside it.
std::vector<uint8_t> countsToMaskCrop(const uint32_t* counts, size_t n, int64_t height, int64_t width, int64_t x0,
                                      int64_t y0, int64_t x1, int64_t y1);


// boundaries[x] = how many times column x of the [H, W] mask m (non-zero inside) differs, as 0/1,
// from the pixel before it in column-major order: the one before (x, 0) is (x − 1, H − 1), and 0
// before the first pixel. Row by row.
void countColumnBoundaries(const uint8_t* m, int64_t H, int64_t W, uint32_t* boundaries);

// Writes column x's boundary positions k = x·H + y (ascending y) at pos[next[x]++], row by row;
// next[x] starts where column x's positions go (prefix sums of countColumnBoundaries). P: uint32_t
// (H·W < 2^32) or uint64_t.
template <class P>
void fillColumnBoundaries(const uint8_t* m, int64_t H, int64_t W, P* next, P* pos);

// The COCO run lengths of the [height, width] mask m (non-zero inside): column-major, alternating
// zeros and ones from a run of zeros (possibly 0), as doubles (exact below 2^53). A 0-pixel mask
// is one empty run of zeros.
std::vector<double> maskToCounts(const uint8_t* m, int64_t height, int64_t width);

// COCO's compressed string of run lengths (pycocotools rleToString): each count (from the third
// on, its difference from the count two before) as a signed little-endian base-32 number, 5 data
// bits a character, 0x20 set when another follows, 0x10 of the last the sign; characters offset
// by 48 ('0'). counts: integer-valued (T = uint32_t, or double: finite integers of any size, a
// RangeError otherwise), the deltas taken in T's arithmetic as lib/rle.ts took them in JS.
template <class T>
std::string countsToString(const T* counts, size_t n);

// The inclusive bounds {x0, y0, x1, y1} of the foreground of the [height, width] mask m (non-zero
// inside) and its pixel count, as lib/mask.ts's Mask.box and area: {0, 0, 0, 0} and 0 when empty.
struct Bounds {
  int64_t x0, y0, x1, y1, area;
};
Bounds maskBounds(const uint8_t* m, int64_t height, int64_t width);

// out[0..4] = x0, y0, x1, y1, area: the form the decoder and the addon hand bounds on in.
void writeBounds(const Bounds& b, double* out);

// mask = logits > t (1 or 0; NaN gives 0), [height, width] row-major, and its bounds as
// maskBounds gives them, in one pass: each row is tested while the cache still holds it (the
// decoder's post-processing on the CPU).
Bounds thresholdBounds(const float* logits, int64_t height, int64_t width, float t, uint8_t* mask);

// The bounds of the union of the masks a and b describe (either may be empty: area 0); b's rows
// start `rowOffset` rows below a's.
Bounds unionBounds(const Bounds& a, Bounds b, int64_t rowOffset = 0);

// The same bounds and area of the mask whose COCO run lengths (summing to width · height) are
// `counts`, from the runs alone.
Bounds runsBounds(const uint32_t* counts, size_t n, int64_t height, int64_t width);

}  // namespace omniseg::masks
