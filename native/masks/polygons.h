// Binary masks → polygons with holes, exactly on pixel boundaries (Mask.toPolygons), and their
// JSON text. Plain host code: it runs on the JS thread for the synchronous API, and in a worker
// thread for the asynchronous one (native/addon/rasters.cc).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace omniseg::masks {

// The polygons of one mask, flat: rings grouped by polygon, each polygon's outer ring first and
// then its holes.
struct Polygons {
  std::vector<int32_t> xy;                // [V, 2] the rings' vertices (x, y), ring after ring
  std::vector<uint32_t> ringSizes;        // [R] vertices of each ring
  std::vector<uint32_t> ringsPerPolygon;  // [P] 1 + the polygon's holes
};

// The polygons of a binary mask (row-major [height, width], non-zero = foreground), one per
// 4-connected foreground region, in raster order of the regions' first pixels (top row first,
// then leftmost). Vertices are pixel corners; rings keep only their corners. Each outer ring
// starts at the top-left corner of its region's first pixel and runs clockwise on screen (y down);
// holes run counter-clockwise, in raster order of their first top side. See polygons.cc.
Polygons tracePolygons(const uint8_t* mask, int64_t width, int64_t height);

// The polygons as the UTF-8 JSON text that JSON.stringify gives lib/contours.ts's MaskPolygon[]
// of them: [{"outer":[[x,y],…],"holes":[[[x,y],…],…]},…], without spaces. (Mask polygons of a
// server response, made in a worker thread: a noisy 12 MP mask's JSON is tens of MB.)
std::vector<uint8_t> polygonsJson(const Polygons& polygons);

}  // namespace omniseg::masks
