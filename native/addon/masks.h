// Mask utilities without a model: tracePolygons (on the calling thread) and tracePolygonsAsync
// (in a worker thread), over native/masks/polygons.
#pragma once
#include <napi.h>

namespace omniseg::addon {

// (source, width, height) → {xy: Int32Array, ringSizes: Uint32Array, ringsPerPolygon: Uint32Array}.
// source: the row-major mask (Uint8Array of width · height bytes, non-zero = foreground), or its
// COCO run lengths (Uint32Array, column-major, summing to width · height).
Napi::Value tracePolygons(const Napi::CallbackInfo& info);
// The same, returning a promise; the source is copied before the call returns.
Napi::Value tracePolygonsAsync(const Napi::CallbackInfo& info);

}  // namespace omniseg::addon
