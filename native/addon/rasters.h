// Utilities without a model, for work that would otherwise hold the event loop for milliseconds: mask
// polygons (tracePolygons on the calling thread, tracePolygonsAsync in a worker thread, over
// native/masks/polygons), SAM mask-prompt coverage (maskCoverage, maskCoverageAsync, over
// native/masks/coverage), referring instances (findInstances, findInstancesAsync, componentLabels,
// over native/masks/components), 8-bit heat maps (quantizeUnitAsync), base64 in JSON (spliceBase64Async)
// and visual prompts (composeVisualPromptAsync, over native/images/visual_prompt).
#pragma once
#include <napi.h>

namespace omniseg::addon {

// (source, width, height) → {xy: Int32Array, ringSizes: Uint32Array, ringsPerPolygon: Uint32Array}.
// source: the row-major mask (Uint8Array of width · height bytes, non-zero = foreground), its
// COCO run lengths (Uint32Array, column-major, summing to width · height), or its row runs
// (Int32Array of [start, end) row-major index pairs, as findInstances returns them).
Napi::Value tracePolygons(const Napi::CallbackInfo& info);
// The same, returning a promise; the source is copied before the call returns.
Napi::Value tracePolygonsAsync(const Napi::CallbackInfo& info);
// tracePolygonsAsync's polygons as their JSON text (Uint8Array of UTF-8: masks::polygonsJson).
Napi::Value tracePolygonsJsonAsync(const Napi::CallbackInfo& info);
// (mask: Uint8Array, width, height) → Float64Array [x0, y0, x1, y1, area] (masks::maskBounds), on
// the calling thread.
Napi::Value maskBounds(const Napi::CallbackInfo& info);
// (counts: Uint32Array | Float64Array) → string: COCO's compressed string of the run lengths
// (masks::countsToString), on the calling thread.
Napi::Value countsString(const Napi::CallbackInfo& info);
// (counts: Uint32Array, width, height) → Float64Array [x0, y0, x1, y1, area] of the mask the run
// lengths describe (masks::runsBounds), on the calling thread.
Napi::Value runsBounds(const Napi::CallbackInfo& info);
// (mask: Uint8Array, width, height) → Float64Array: its COCO run lengths (masks::maskToCounts),
// on the calling thread.
Napi::Value maskToCounts(const Napi::CallbackInfo& info);
// (source, width, height) → the mask as row-major bytes, 1 inside and 0 outside, on the calling
// thread (run lengths decoded: masks::countsToMask, masks::runsToMask).
Napi::Value maskBytes(const Napi::CallbackInfo& info);
// (source, width, height) → promise of the mask as row-major bytes, 255 inside and 0 outside
// (an 8-bit grey image), made in a worker thread from a copy of the source.
Napi::Value maskGreyAsync(const Napi::CallbackInfo& info);
// (mask, width, height, resizedWidth, resizedHeight, imageSize, lowResSize[, logitLimit]) →
// Float32Array: masks::maskCoverage of a width × height mask in that frame, on the calling thread
// (with logitLimit, as SAM mask-prompt logits: masks::coverageToLogits); mask is a source as
// tracePolygons takes it. maskCoverageAsync returns a promise of it, made in a worker thread from
// a copy of the source (run lengths are decoded there too).
Napi::Value maskCoverage(const Napi::CallbackInfo& info);
Napi::Value maskCoverageAsync(const Napi::CallbackInfo& info);

// (heat: Float32Array, width, height, threshold, connectivity, minPixels, maxInstances) →
// {stats: Float64Array [K, 8] (peak, x0, y0, x1, y1, area, max, sum), runs: Int32Array [R, 2],
// runCounts: Uint32Array [K]}: masks::findInstances on the calling thread (width · height < 2^31).
Napi::Value findInstances(const Napi::CallbackInfo& info);
// The same, returning a promise; reads the heat map in place (the caller must neither change
// nor detach it before the promise settles).
Napi::Value findInstancesAsync(const Napi::CallbackInfo& info);
// (values: Float32Array, width, height, threshold, connectivity) → {labels: Int32Array, count}:
// each pixel's component (1.., 0 for background) of masks::componentRuns, on the calling thread.
Napi::Value componentLabels(const Napi::CallbackInfo& info);
// (values: Float32Array) → Promise<Uint8Array>: round(255 · clamp(v, 0, 1)) of each value (as JS's
// Math.round on doubles; NaN → 0), in a worker thread; the values are copied before it returns.
Napi::Value quantizeUnitAsync(const Napi::CallbackInfo& info);
// (prefix: string, bytes: Uint8Array, suffix: string) → Promise<Uint8Array>: the UTF-8 of prefix,
// the standard base64 of bytes (RFC 4648, padded) and the UTF-8 of suffix, made in a worker thread;
// the bytes are copied before it returns.
Napi::Value spliceBase64Async(const Napi::CallbackInfo& info);
// (crop: Uint8Array, mask, width, height, blurred: Uint8Array, blurredWidth, blurredHeight,
// darken) → Promise<Uint8Array>: images::composeVisualPrompt of a width × height RGB crop, its
// mask and its blurred background (blurredWidth × blurredHeight RGB), in a worker thread. mask:
// the crop's width × height bytes, or {counts, width, height, left, top}, the COCO run lengths
// (Uint32Array) of the whole width × height image's mask and the crop's place in it, decoded
// there (masks::countsToMaskCrop). Unlike the other tools it reads its byte buffers in place
// (tens of MB for a photo, and copying them on the JS thread is what it saves): the caller must
// neither change nor detach them before the promise settles. The counts are copied.
Napi::Value composeVisualPromptAsync(const Napi::CallbackInfo& info);

}  // namespace omniseg::addon
