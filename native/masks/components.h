// Connected components of a heat map's (or any image's) pixels above a threshold, as horizontal
// runs joined by union-find, and the referring instances they make (lib/referring/instances.ts
// findInstances, labelComponents). Plain host code, run on the JS thread for the synchronous API
// and in a worker thread for the asynchronous one (native/addon/rasters.cc).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace omniseg::masks {

// The foreground as horizontal runs in row-major order: run r covers the row-major indices
// [start[r], end[r]) and belongs to component label[r] (1.., numbered in the order of the
// components' first pixels).
struct Runs {
  std::vector<int64_t> start, end;
  std::vector<int32_t> label;
  int32_t components = 0;
};

// The runs of the pixels strictly above `threshold` (compared as doubles, as in JS; NaN is never
// above it), 4- or 8-connected. One pass finds the runs; a run touching one of the row above
// (overlapping it, or with 8-connectivity meeting it at a corner) joins its component. A port of
// the TypeScript componentRuns it replaced (lib/components.ts until 0a94c66): the same runs and
// labels.
Runs componentRuns(const float* values, int64_t width, int64_t height, double threshold, int connectivity);

// A candidate instance: one component's statistics (pixels in row-major order) and its runs.
struct Instance {
  int64_t peak;  // row-major index of its largest value (the first on ties)
  int64_t x0, y0, x1, y1;  // inclusive bounds
  int64_t area;
  double max;  // the value at peak
  double sum;  // float64 sum of its values, run by run, left to right
  std::vector<int64_t> runs;  // [start, end) pairs, in row-major order
};

// The components with at least `minPixels` pixels, by descending max (then larger area, then
// earlier peak), at most maxInstances of them. ref: lib/referring/instances.ts findInstances.
std::vector<Instance> findInstances(const float* heat, int64_t width, int64_t height, double threshold,
                                    int connectivity, int64_t minPixels, int64_t maxInstances);

// A mask of `pixels` bytes (0 or 1) from runs of ones: n / 2 pairs [start, end) of row-major
// indices, in any order (an Instance's runs, as lib/referring/instances.ts hands them back).
// Throws a RangeError for an odd n or a run outside [0, pixels].
std::vector<uint8_t> runsToMask(const int32_t* runs, size_t n, int64_t pixels);

}  // namespace omniseg::masks
