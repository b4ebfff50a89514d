#include "addon/rasters.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "addon/common.h"
#include "addon/promise_worker.h"
#include "images/visual_prompt.h"
#include "masks/components.h"
#include "masks/coverage.h"
#include "masks/polygons.h"
#include "masks/run_lengths.h"

namespace omniseg::addon {

namespace {

// A JS number that must be an integer in [lo, hi] (no fraction, no NaN): a size or a count.
int64_t integerArg(Napi::Env env, Napi::Value v, double lo, double hi, const char* what) {
  require(env, v.IsNumber(), what);
  const double d = v.As<Napi::Number>().DoubleValue();
  require(env, d >= lo && d <= hi && d == std::floor(d), what);
  return static_cast<int64_t>(d);
}

constexpr double kMaxSide = 2147483647.0;  // 2^31 - 1

constexpr const char* kCoverageUsage =
    "maskCoverage(mask: Uint8Array | Uint32Array | Int32Array, width, height, resizedWidth, resizedHeight, imageSize, "
    "lowResSize[, logitLimit])";

// A width × height mask as the caller gave it (see rasters.h): row-major bytes, COCO run lengths
// or row runs. Read in place, or from its own copy (own()) for a worker thread.
struct MaskSource {
  enum class Kind { Bytes, Counts, RowRuns } kind = Kind::Bytes;
  const void* data = nullptr;
  size_t length = 0;  // elements of `data`
  int64_t width = 0, height = 0;
  std::shared_ptr<std::vector<uint8_t>> copy;

  // Copies the caller's elements now: it may reuse or detach its buffer while the work runs.
  MaskSource& own() {
    const size_t bytes = length * (kind == Kind::Bytes ? 1 : 4);
    // (+4: data() stays a valid pointer when empty; one pass over the source, not a fill and a copy)
    const auto* from = static_cast<const uint8_t*>(data);
    copy = std::make_shared<std::vector<uint8_t>>();
    copy->reserve(bytes + 4);
    copy->assign(from, from + bytes);
    copy->resize(bytes + 4);
    data = copy->data();
    return *this;
  }
  // The row-major bytes: in place, or decoded into `scratch` (a RangeError for runs that do not fit).
  const uint8_t* bytes(std::vector<uint8_t>& scratch) const {
    switch (kind) {
      case Kind::Bytes: return static_cast<const uint8_t*>(data);
      case Kind::Counts: scratch = masks::countsToMask(static_cast<const uint32_t*>(data), length, height, width); break;
      case Kind::RowRuns: scratch = masks::runsToMask(static_cast<const int32_t*>(data), length, width * height); break;
    }
    return scratch.data();
  }
  masks::Polygons trace() const {
    std::vector<uint8_t> scratch;
    return masks::tracePolygons(bytes(scratch), width, height);
  }
  // The mask as row-major bytes, `inside` where it is set and 0 elsewhere: the runs decoded, or
  // the bytes mapped (in their own copy when the source has one, else in a new one).
  std::vector<uint8_t> levels(uint8_t inside) {
    std::vector<uint8_t> out;
    const uint8_t* mask = bytes(out);  // (runs: decoded into `out` as 0/1)
    if (kind == Kind::Bytes) {
      const auto n = static_cast<size_t>(width * height);
      if (copy) {
        out = std::move(*copy);
        copy.reset();
        out.resize(n);  // (the copy has 4 bytes more)
      } else {
        out.assign(mask, mask + n);
      }
    } else if (inside == 1) {
      return out;
    }
    for (uint8_t& v : out) v = v != 0 ? inside : 0;
    return out;
  }
};

// Sides of the masks that are only decoded, encoded or measured (no int32 coordinates): any, as
// long as width · height stays below 2^53 (a JS mask holds at most 2^32 bytes anyway).
constexpr double kAnySide = 9007199254740992.0;  // 2^53

// (source, width, height, ...): the first three arguments, sides in [minSide, maxSide].
MaskSource maskSource(const Napi::CallbackInfo& info, const char* usage, double minSide = 0,
                      double maxSide = kMaxSide - 1) {
  Napi::Env env = info.Env();
  require(env, info.Length() >= 3 && info[0].IsTypedArray(), usage);
  MaskSource s;
  s.width = integerArg(env, info[1], minSide, maxSide, usage);
  s.height = integerArg(env, info[2], minSide, maxSide, usage);
  require(env, static_cast<double>(s.width) * static_cast<double>(s.height) < kAnySide, usage);
  // (each type's own Data(): napi_get_typedarray_info, which SharedArrayBuffers answer too)
  auto ta = info[0].As<Napi::TypedArray>();
  s.length = ta.ElementLength();
  switch (ta.TypedArrayType()) {
    case napi_uint8_array:
      require(env, s.length == static_cast<size_t>(s.width * s.height), "source must hold width * height bytes");
      s.data = ta.As<Napi::Uint8Array>().Data();
      break;
    case napi_uint32_array:
      s.kind = MaskSource::Kind::Counts;
      s.data = ta.As<Napi::Uint32Array>().Data();
      break;
    case napi_int32_array:
      s.kind = MaskSource::Kind::RowRuns;
      s.data = ta.As<Napi::Int32Array>().Data();
      break;
    default: require(env, false, usage);
  }
  return s;
}

// maskSource of exactly (source, width, height) whose source is a `type` typed array.
MaskSource typedSource(const Napi::CallbackInfo& info, const char* usage, napi_typedarray_type type, double maxSide) {
  require(info.Env(), info.Length() == 3 && info[0].IsTypedArray() && info[0].As<Napi::TypedArray>().TypedArrayType() == type,
          usage);
  return maskSource(info, usage, 0, maxSide);
}

// Float64Array [x0, y0, x1, y1, area].
Napi::Float64Array boundsToJs(Napi::Env env, const masks::Bounds& b) {
  auto out = Napi::Float64Array::New(env, 5);
  double values[5];
  masks::writeBounds(b, values);
  for (size_t i = 0; i < 5; ++i) out[i] = values[i];
  return out;
}

Napi::Object toJs(Napi::Env env, masks::Polygons&& p) {
  auto o = Napi::Object::New(env);
  o.Set("xy", toTypedArray(env, std::move(p.xy)));
  o.Set("ringSizes", toTypedArray(env, std::move(p.ringSizes)));
  o.Set("ringsPerPolygon", toTypedArray(env, std::move(p.ringsPerPolygon)));
  return o;
}

// Work on a mask source in a worker thread, from a copy of it: its polygons (the flat arrays, or
// their JSON text: masks::polygonsJson) or its pixels as 0/255 bytes (for an 8-bit PNG).
class MaskWorker : public PromiseWorker {
 public:
  enum class Output { Polygons, PolygonsJson, Grey };
  MaskWorker(Napi::Env env, MaskSource s, Output output)
      : PromiseWorker(env), source_(std::move(s.own())), output_(output) {}

 protected:
  void run() override {
    if (output_ == Output::Grey) {
      bytes_ = source_.levels(255);
    } else {
      polygons_ = source_.trace();
      if (output_ == Output::PolygonsJson) {
        bytes_ = masks::polygonsJson(polygons_);
        polygons_ = {};
      }
    }
    source_.copy.reset();
  }
  Napi::Value result() override {
    return output_ == Output::Polygons ? toJs(Env(), std::move(polygons_)) : toTypedArray(Env(), std::move(bytes_));
  }

 private:
  MaskSource source_;
  Output output_;
  masks::Polygons polygons_;
  std::vector<uint8_t> bytes_;
};

class QuantizeWorker : public PromiseWorker {
 public:
  QuantizeWorker(Napi::Env env, std::vector<float> values) : PromiseWorker(env), values_(std::move(values)) {}

 protected:
  void run() override {
    bytes_.resize(values_.size());
    for (size_t i = 0; i < values_.size(); ++i) {
      // std::max(0.0, NaN) is 0.0, as Math.round(NaN) written to a byte is 0
      const double v = std::min(1.0, std::max(0.0, static_cast<double>(values_[i]))) * 255.0;
      bytes_[i] = static_cast<uint8_t>(std::floor(v + 0.5));  // Math.round: half up
    }
    values_ = {};
  }
  Napi::Value result() override { return toTypedArray(Env(), std::move(bytes_)); }

 private:
  std::vector<float> values_;
  std::vector<uint8_t> bytes_;
};

class Base64Worker : public PromiseWorker {
 public:
  Base64Worker(Napi::Env env, std::string prefix, std::vector<uint8_t> bytes, std::string suffix)
      : PromiseWorker(env), prefix_(std::move(prefix)), bytes_(std::move(bytes)), suffix_(std::move(suffix)) {}

 protected:
  void run() override {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const size_t n = bytes_.size(), encoded = (n + 2) / 3 * 4;
    out_.resize(prefix_.size() + encoded + suffix_.size());
    uint8_t* o = out_.data();
    std::memcpy(o, prefix_.data(), prefix_.size());
    o += prefix_.size();
    const uint8_t* b = bytes_.data();
    size_t i = 0;
    for (; i + 3 <= n; i += 3, o += 4) {  // 3 bytes → 4 characters of 6 bits
      const uint32_t v = uint32_t(b[i]) << 16 | uint32_t(b[i + 1]) << 8 | b[i + 2];
      o[0] = kAlphabet[v >> 18];
      o[1] = kAlphabet[(v >> 12) & 63];
      o[2] = kAlphabet[(v >> 6) & 63];
      o[3] = kAlphabet[v & 63];
    }
    if (i < n) {  // 1 or 2 bytes left: padded with '='
      const uint32_t v = uint32_t(b[i]) << 16 | (i + 1 < n ? uint32_t(b[i + 1]) << 8 : 0);
      o[0] = kAlphabet[v >> 18];
      o[1] = kAlphabet[(v >> 12) & 63];
      o[2] = i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=';
      o[3] = '=';
      o += 4;
    }
    std::memcpy(o, suffix_.data(), suffix_.size());
    bytes_ = {};
  }
  Napi::Value result() override { return toTypedArray(Env(), std::move(out_)); }

 private:
  std::string prefix_;
  std::vector<uint8_t> bytes_;
  std::string suffix_;
  std::vector<uint8_t> out_;
};

class ComposeWorker : public PromiseWorker {
 public:
  // Reads crop, blurred and a byte mask in place: references keep them from being collected until
  // it is done (not from being detached: the library passes buffers it alone holds).
  ComposeWorker(Napi::Env env, const Napi::CallbackInfo& info, images::RgbView crop, const uint8_t* mask,
                images::RgbView blurred, double darken)
      : PromiseWorker(env), crop_(crop), mask_(mask), blurred_(blurred), darken_(darken) {
    for (int i : {0, 1, 4}) keep_.push_back(Napi::Persistent(info[i].As<Napi::Object>()));
  }
  // The mask as the run lengths of the whole image (copied: a few KB), its crop decoded in run().
  ComposeWorker(Napi::Env env, const Napi::CallbackInfo& info, images::RgbView crop, std::vector<uint32_t> counts,
                const int64_t frame[4], images::RgbView blurred, double darken)
      : PromiseWorker(env), crop_(crop), mask_(nullptr), blurred_(blurred), darken_(darken), counts_(std::move(counts)) {
    std::copy(frame, frame + 4, frame_);
    for (int i : {0, 4}) keep_.push_back(Napi::Persistent(info[i].As<Napi::Object>()));
  }

 protected:
  void run() override {
    if (mask_ == nullptr) {
      const auto [W, H, left, top] = frame_;
      maskCrop_ = masks::countsToMaskCrop(counts_.data(), counts_.size(), H, W, left, top, left + crop_.width,
                                          top + crop_.height);
      mask_ = maskCrop_.data();
    }
    out_ = images::composeVisualPrompt(crop_, mask_, blurred_, darken_);
  }
  Napi::Value result() override { return toTypedArray(Env(), std::move(out_)); }

 private:
  images::RgbView crop_;
  const uint8_t* mask_;
  images::RgbView blurred_;
  double darken_;
  std::vector<uint32_t> counts_;
  int64_t frame_[4] = {};  // with counts: the image's width and height, the crop's left and top
  std::vector<uint8_t> maskCrop_;
  std::vector<Napi::ObjectReference> keep_;
  std::vector<uint8_t> out_;
};

// maskCoverage's arguments: (mask, width, height, resizedWidth, resizedHeight, imageSize, lowResSize).
struct CoverageArgs {
  MaskSource mask;
  masks::MaskFrame frame;
  std::optional<double> logitLimit;  // the logits of the coverage, clamped to ±this (SAM mask prompts)

  std::vector<float> coverage() const {
    std::vector<uint8_t> scratch;
    auto out = masks::maskCoverage(mask.bytes(scratch), mask.width, mask.height, frame);
    if (logitLimit) masks::coverageToLogits(out, *logitLimit);
    return out;
  }
};

CoverageArgs coverageArgs(const Napi::CallbackInfo& info, const char* usage) {
  Napi::Env env = info.Env();
  require(env, info.Length() == 7 || info.Length() == 8, usage);
  CoverageArgs a{maskSource(info, usage, 1), {}, std::nullopt};
  if (info.Length() == 8) {
    require(env, info[7].IsNumber(), usage);
    const double limit = info[7].As<Napi::Number>().DoubleValue();
    require(env, limit > 0 && std::isfinite(limit), usage);
    a.logitLimit = limit;
  }
  int64_t v[4];
  for (int i = 0; i < 4; ++i) v[i] = integerArg(env, info[i + 3], 1, kMaxSide, usage);
  require(env, v[0] <= v[2] && v[1] <= v[2] && v[3] <= 4096, usage);
  a.frame = {v[0], v[1], v[2], v[3]};
  return a;
}

class CoverageWorker : public PromiseWorker {
 public:
  CoverageWorker(Napi::Env env, CoverageArgs a) : PromiseWorker(env), args_(std::move(a)) { args_.mask.own(); }

 protected:
  void run() override {
    out_ = args_.coverage();
    args_.mask.copy.reset();
  }
  Napi::Value result() override { return toTypedArray(Env(), std::move(out_)); }

 private:
  CoverageArgs args_;
  std::vector<float> out_;
};

// findInstances' and componentLabels' arguments: (values: Float32Array, width, height, threshold,
// connectivity[, minPixels, maxInstances]).
struct ComponentArgs {
  const float* values;
  int64_t width, height;
  double threshold;
  int connectivity;
  int64_t minPixels = 0, maxInstances = 0;
};

ComponentArgs componentArgs(const Napi::CallbackInfo& info, size_t count, const char* usage) {
  Napi::Env env = info.Env();
  require(env, info.Length() == count && info[0].IsTypedArray() &&
                   info[0].As<Napi::TypedArray>().TypedArrayType() == napi_float32_array,
          usage);
  for (size_t i = 1; i < count; ++i) require(env, info[i].IsNumber(), usage);
  auto integer = [&](size_t i, double lo, double hi) { return integerArg(env, info[i], lo, hi, usage); };
  ComponentArgs a{};
  a.width = integer(1, 1, kMaxSide);
  a.height = integer(2, 1, kMaxSide);
  require(env, a.width * a.height < (int64_t{1} << 31), "width * height must be below 2^31");
  auto values = info[0].As<Napi::Float32Array>();
  require(env, values.ElementLength() == static_cast<size_t>(a.width * a.height), usage);
  a.values = values.Data();
  a.threshold = info[3].As<Napi::Number>().DoubleValue();
  require(env, !std::isnan(a.threshold), usage);
  a.connectivity = static_cast<int>(integer(4, 4, 8));
  require(env, a.connectivity == 4 || a.connectivity == 8, usage);
  if (count == 7) {
    a.minPixels = integer(5, 0, 9007199254740992.0);
    a.maxInstances = integer(6, 1, 9007199254740992.0);
  }
  return a;
}

constexpr const char* kFindInstancesUsage =
    "findInstances(heat: Float32Array, width, height, threshold, connectivity, minPixels, maxInstances)";

// The kept instances as the arrays JS reads: stats [K, 8] (peak, x0, y0, x1, y1, area, max, sum),
// runs [R, 2] (start, end), runCounts [K]. Built where the instances were found (a worker thread
// for the async call: 8 M runs took 104 ms of the JS thread).
struct InstanceArrays {
  std::vector<double> stats;
  std::vector<int32_t> runs;
  std::vector<uint32_t> counts;

  InstanceArrays() = default;
  explicit InstanceArrays(const std::vector<masks::Instance>& found) {
    size_t total = 0;
    for (const masks::Instance& s : found) total += s.runs.size();
    stats.reserve(found.size() * 8);
    runs.reserve(total);
    counts.reserve(found.size());
    for (const masks::Instance& s : found) {
      for (double v : {double(s.peak), double(s.x0), double(s.y0), double(s.x1), double(s.y1), double(s.area), s.max, s.sum}) {
        stats.push_back(v);
      }
      for (int64_t i : s.runs) runs.push_back(static_cast<int32_t>(i));  // (width · height < 2^31)
      counts.push_back(static_cast<uint32_t>(s.runs.size() / 2));
    }
  }
  // {stats: Float64Array, runs: Int32Array, runCounts: Uint32Array}, without copying.
  Napi::Object toJs(Napi::Env env) && {
    auto o = Napi::Object::New(env);
    o.Set("stats", toTypedArray(env, std::move(stats)));
    o.Set("runs", toTypedArray(env, std::move(runs)));
    o.Set("runCounts", toTypedArray(env, std::move(counts)));
    return o;
  }
};

class InstancesWorker : public PromiseWorker {
 public:
  // Reads the heat map in place: a reference keeps it from being collected until the worker is done
  // (not from being detached: the library passes heat maps it alone holds).
  InstancesWorker(Napi::Env env, const Napi::CallbackInfo& info, const ComponentArgs& a)
      : PromiseWorker(env), args_(a), keep_(Napi::Persistent(info[0].As<Napi::Object>())) {}

 protected:
  void run() override {
    const ComponentArgs& a = args_;
    found_ = InstanceArrays(
        masks::findInstances(a.values, a.width, a.height, a.threshold, a.connectivity, a.minPixels, a.maxInstances));
  }
  Napi::Value result() override { return std::move(found_).toJs(Env()); }

 private:
  ComponentArgs args_;
  Napi::ObjectReference keep_;
  InstanceArrays found_;
};

}  // namespace

Napi::Value composeVisualPromptAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage =
      "composeVisualPromptAsync(crop: Uint8Array, mask: Uint8Array | {counts: Uint32Array, width, height, left, top}, "
      "width, height, blurred: Uint8Array, blurredWidth, blurredHeight, darken)";
  require(env, info.Length() == 8, usage);
  auto dimension = [&](Napi::Value v, double lo = 1) { return integerArg(env, v, lo, kMaxSide, usage); };
  const int64_t width = dimension(info[2]), height = dimension(info[3]);
  const int64_t bw = dimension(info[5]), bh = dimension(info[6]);
  require(env, info[7].IsNumber(), usage);
  const double darken = info[7].As<Napi::Number>().DoubleValue();
  require(env, darken >= 0 && darken <= 1, "darken must be in [0, 1]");
  auto bytes = [&](Napi::Value v, int64_t n) {
    require(env, v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array, usage);
    auto a = v.As<Napi::Uint8Array>();
    require(env, a.ElementLength() == static_cast<size_t>(n), usage);
    return a.Data();
  };
  // (sides below 2^31 multiply within int64; 3 bytes a pixel more only below 2^53 pixels)
  constexpr int64_t kMaxPixels = int64_t{1} << 53;
  require(env, width * height < kMaxPixels && bw * bh < kMaxPixels, usage);
  const images::RgbView crop{bytes(info[0], width * height * 3), width, height};
  const images::RgbView blurred{bytes(info[4], bw * bh * 3), bw, bh};
  if (info[1].IsTypedArray()) {
    return (new ComposeWorker(env, info, crop, bytes(info[1], width * height), blurred, darken))->queue();
  }
  // {counts, width, height, left, top}: the whole image's run lengths and where the crop lies
  require(env, info[1].IsObject(), usage);
  auto m = info[1].As<Napi::Object>();
  int64_t frame[4];
  const char* keys[4] = {"width", "height", "left", "top"};
  for (int i = 0; i < 4; ++i) frame[i] = dimension(m.Get(keys[i]), i < 2 ? 1 : 0);
  require(env, frame[2] + width <= frame[0] && frame[3] + height <= frame[1], "the crop must lie inside the mask");
  auto counts = copyTypedArray<uint32_t>(env, m.Get("counts"), napi_uint32_array, usage);
  return (new ComposeWorker(env, info, crop, std::move(counts), frame, blurred, darken))->queue();
}

Napi::Value spliceBase64Async(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "spliceBase64Async(prefix: string, bytes: Uint8Array, suffix: string)";
  require(env, info.Length() == 3 && info[0].IsString() && info[2].IsString(), usage);
  auto bytes = copyTypedArray<uint8_t>(env, info[1], napi_uint8_array, usage);
  return (new Base64Worker(env, info[0].As<Napi::String>().Utf8Value(), std::move(bytes),
                           info[2].As<Napi::String>().Utf8Value()))
      ->queue();
}

Napi::Value quantizeUnitAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "quantizeUnitAsync(values: Float32Array)";
  require(env, info.Length() == 1, usage);
  return (new QuantizeWorker(env, copyTypedArray<float>(env, info[0], napi_float32_array, usage)))->queue();
}

Napi::Value maskCoverage(const Napi::CallbackInfo& info) {
  const CoverageArgs a = coverageArgs(info, kCoverageUsage);
  return toTypedArray(info.Env(), onJsThread(info.Env(), [&] { return a.coverage(); }));
}

Napi::Value maskCoverageAsync(const Napi::CallbackInfo& info) {
  return (new CoverageWorker(info.Env(), coverageArgs(info, kCoverageUsage)))->queue();
}

Napi::Value findInstances(const Napi::CallbackInfo& info) {
  const ComponentArgs a = componentArgs(info, 7, kFindInstancesUsage);
  return onJsThread(info.Env(), [&] {
           return InstanceArrays(masks::findInstances(a.values, a.width, a.height, a.threshold, a.connectivity,
                                                      a.minPixels, a.maxInstances));
         })
      .toJs(info.Env());
}

Napi::Value findInstancesAsync(const Napi::CallbackInfo& info) {
  return (new InstancesWorker(info.Env(), info, componentArgs(info, 7, kFindInstancesUsage)))->queue();
}

Napi::Value componentLabels(const Napi::CallbackInfo& info) {
  const ComponentArgs a = componentArgs(info, 5, "componentLabels(values: Float32Array, width, height, threshold, connectivity)");
  const masks::Runs runs =
      onJsThread(info.Env(), [&] { return masks::componentRuns(a.values, a.width, a.height, a.threshold, a.connectivity); });
  std::vector<int32_t> labels(static_cast<size_t>(a.width * a.height), 0);
  for (size_t r = 0; r < runs.start.size(); ++r) {
    std::fill(labels.begin() + runs.start[r], labels.begin() + runs.end[r], runs.label[r]);
  }
  auto o = Napi::Object::New(info.Env());
  o.Set("labels", toTypedArray(info.Env(), std::move(labels)));
  o.Set("count", Napi::Number::New(info.Env(), runs.components));
  return o;
}

constexpr const char* kTraceUsage =
    "tracePolygons(source: Uint8Array | Uint32Array | Int32Array, width, height), width and height integers in "
    "[0, 2^31 - 1)";

Napi::Value tracePolygons(const Napi::CallbackInfo& info) {
  require(info.Env(), info.Length() == 3, kTraceUsage);
  const MaskSource s = maskSource(info, kTraceUsage);
  return toJs(info.Env(), onJsThread(info.Env(), [&] { return s.trace(); }));
}

Napi::Value maskBytes(const Napi::CallbackInfo& info) {
  const char* usage = "maskBytes(source: Uint8Array | Uint32Array | Int32Array, width, height)";
  require(info.Env(), info.Length() == 3, usage);
  MaskSource s = maskSource(info, usage, 0, kAnySide);
  return toTypedArray(info.Env(), onJsThread(info.Env(), [&] { return s.levels(1); }));
}

Napi::Value maskBounds(const Napi::CallbackInfo& info) {
  const char* usage = "maskBounds(mask: Uint8Array, width, height)";
  const MaskSource s = typedSource(info, usage, napi_uint8_array, kAnySide);
  return boundsToJs(info.Env(), masks::maskBounds(static_cast<const uint8_t*>(s.data), s.height, s.width));
}

Napi::Value countsString(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "countsString(counts: Uint32Array | Float64Array)";
  require(env, info.Length() == 1 && info[0].IsTypedArray(), usage);
  auto ta = info[0].As<Napi::TypedArray>();
  const bool u32 = ta.TypedArrayType() == napi_uint32_array;
  require(env, u32 || ta.TypedArrayType() == napi_float64_array, usage);
  auto write = [&](auto a) { return onJsThread(env, [&] { return masks::countsToString(a.Data(), a.ElementLength()); }); };
  const std::string text = u32 ? write(ta.As<Napi::Uint32Array>()) : write(ta.As<Napi::Float64Array>());
  // (ASCII, '0' to 'o': a one-byte string, copied as it is)
  napi_value value;
  NAPI_THROW_IF_FAILED(env, napi_create_string_latin1(env, text.data(), text.size(), &value), Napi::Value());
  return Napi::Value(env, value);
}

Napi::Value runsBounds(const Napi::CallbackInfo& info) {
  const char* usage = "runsBounds(counts: Uint32Array, width, height)";
  const MaskSource s = typedSource(info, usage, napi_uint32_array, kAnySide);
  return boundsToJs(info.Env(), masks::runsBounds(static_cast<const uint32_t*>(s.data), s.length, s.height, s.width));
}

Napi::Value maskToCounts(const Napi::CallbackInfo& info) {
  const char* usage = "maskToCounts(mask: Uint8Array, width, height)";
  // (a column's boundaries are counted in 32 bits: at most height + 1 of them)
  const MaskSource s = typedSource(info, usage, napi_uint8_array, 4294967294.0);
  return toTypedArray(info.Env(), onJsThread(info.Env(), [&] {
    return masks::maskToCounts(static_cast<const uint8_t*>(s.data), s.height, s.width);
  }));
}

Napi::Value tracePolygonsAsync(const Napi::CallbackInfo& info) {
  require(info.Env(), info.Length() == 3, kTraceUsage);
  return (new MaskWorker(info.Env(), maskSource(info, kTraceUsage), MaskWorker::Output::Polygons))->queue();
}

Napi::Value tracePolygonsJsonAsync(const Napi::CallbackInfo& info) {
  require(info.Env(), info.Length() == 3, kTraceUsage);
  return (new MaskWorker(info.Env(), maskSource(info, kTraceUsage), MaskWorker::Output::PolygonsJson))->queue();
}

Napi::Value maskGreyAsync(const Napi::CallbackInfo& info) {
  const char* usage = "maskGreyAsync(source: Uint8Array | Uint32Array | Int32Array, width, height)";
  require(info.Env(), info.Length() == 3, usage);
  return (new MaskWorker(info.Env(), maskSource(info, usage, 0, kAnySide), MaskWorker::Output::Grey))->queue();
}

}  // namespace omniseg::addon
