// Runs omniseg's CLIPSeg model without Node, for the GPU check (scripts/gpu-check.sh): heat maps
// for a list of cases on normalised [3, S, S] pixel files, written as raw float32 logits, plus
// timings of the whole pass and of its parts, printed as JSON.
//
//   clipseg_gpu --model DIR --size S --out DIR [--device cuda|cpu] [--threads N] [--iters N]
//               [--batch N] --case NAME=SPEC...
//   SPEC: ';'-separated items: pixels=FILE.f32 (required) | ids=1,2,3 | ref=FILE.f32 | w=0.3
//
// Writes OUT/NAME.logits.f32 ([S, S]) and OUT/NAME.conditional.f32 ([projection_dim]); prints
// {"device","cases":{NAME:{"min","median"}},"textMs","imageFeaturesMs","decodeMs","decodeBatchMs"}
// (ms after a warm-up; the part timings use the first case with ids; decodeBatchMs decodes
// --batch embeddings, default 8, on one set of image features).
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "models/clipseg/clipseg.h"
#include "test/gpu/driver.h"

using namespace omniseg;
using namespace omniseg::gpucheck;

namespace {

struct Case {
  std::string name, pixels, ref;
  std::vector<int32_t> ids;
  float textWeight = 1.f;
};

Case parseCase(const std::string& arg) {
  auto [name, items] = splitCase(arg);
  Case c;
  c.name = name;
  for (const std::string& item : items) {
    const size_t e = item.find('=');
    if (e == std::string::npos) throw Error("bad case item: " + item);
    const std::string key = item.substr(0, e), value = item.substr(e + 1);
    if (key == "pixels") {
      c.pixels = value;
    } else if (key == "ref") {
      c.ref = value;
    } else if (key == "w") {
      c.textWeight = std::stof(value);
    } else if (key == "ids") {
      std::stringstream nums(value);
      std::string n;
      while (std::getline(nums, n, ',')) c.ids.push_back(std::stoi(n));
    } else {
      throw Error("bad case item: " + item);
    }
  }
  if (c.pixels.empty()) throw Error("case " + c.name + " has no pixels=");
  return c;
}

int run(int argc, char** argv) {
  std::map<std::string, std::string> opt{{"device", "cuda"}, {"threads", "4"}, {"iters", "10"}, {"batch", "8"}};
  std::vector<std::string> caseArgs;
  parseArgs(argc, argv, opt, "case", caseArgs);
  for (const char* k : {"model", "size", "out"})
    if (!opt.count(k)) throw Error(std::string("missing --") + k);
  const int64_t S = std::stoll(opt["size"]);
  const int iters = std::stoi(opt["iters"]);
  const Device device = opt["device"] == "cuda" ? Device::Cuda : Device::Cpu;
  auto model = clipseg::ClipSegModel::load(opt["model"], std::stoi(opt["threads"]), device);
  const size_t pixelCount = static_cast<size_t>(3 * S * S);

  std::ostringstream json;
  json << "{\"device\":\"" << opt["device"] << "\",\"cases\":{";
  const Case* timed = nullptr;
  std::vector<float> timedPixels;
  for (size_t i = 0; i < caseArgs.size(); ++i) {
    const Case c = parseCase(caseArgs[i]);
    const std::vector<float> pixels = readFile<float>(c.pixels, pixelCount);
    std::vector<float> ref;
    clipseg::Conditioning cond;
    if (!c.ids.empty()) {
      cond.ids = c.ids.data();
      cond.idsLength = static_cast<int64_t>(c.ids.size());
    }
    if (!c.ref.empty()) {
      ref = readFile<float>(c.ref, pixelCount);
      cond.promptPixels = ref.data();
      cond.promptHeight = cond.promptWidth = S;
    }
    cond.textWeight = c.textWeight;
    clipseg::SegmentResult out;
    const Stats st = timeIt(iters, [&] { out = model->segment(pixels.data(), S, S, cond); });
    writeFile(opt["out"] + "/" + c.name + ".logits.f32", out.logits.data(), out.logits.size());
    writeFile(opt["out"] + "/" + c.name + ".conditional.f32", out.conditional.data(), out.conditional.size());
    json << (i ? "," : "") << "\"" << c.name << "\":" << statsJson(st);
    if (!timed && !c.ids.empty() && c.ref.empty()) {
      static Case keep;
      keep = c;
      timed = &keep;
      timedPixels = pixels;
    }
  }
  json << "}";
  if (timed) {
    const auto& ids = timed->ids;
    std::vector<float> text;
    const Stats textMs = timeIt(iters, [&] { text = model->textEmbedding(ids.data(), static_cast<int64_t>(ids.size())); });
    clipseg::ImageFeatures features;
    const Stats featMs = timeIt(iters, [&] { features = model->imageFeatures(timedPixels.data(), S, S); });
    clipseg::SegmentResult out;
    const Stats decMs = timeIt(iters, [&] { out = model->segment(features.acts.data(), features.grid, text.data(), 1); });
    const int64_t batch = std::stoll(opt["batch"]);
    std::vector<float> many;
    for (int64_t b = 0; b < batch; ++b) many.insert(many.end(), text.begin(), text.end());
    const Stats batchMs =
        timeIt(iters, [&] { out = model->segment(features.acts.data(), features.grid, many.data(), batch); });
    json << ",\"textMs\":" << statsJson(textMs) << ",\"imageFeaturesMs\":" << statsJson(featMs)
         << ",\"decodeMs\":" << statsJson(decMs) << ",\"decodeBatch\":" << batch
         << ",\"decodeBatchMs\":" << statsJson(batchMs);
  }
  json << "}";
  std::cout << json.str() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return runMain("clipseg_gpu", argc, argv, run); }
