// Standalone test for native/core/safetensors.* and native/core/weights.*.
// Build and run:  make -C test/native test       (plain -O2)
//                 make -C test/native asan       (-fsanitize=address,undefined)
// or by hand:
//   g++ -Wall -Wextra -O2 -std=c++17 -Inative/core test/native/safetensors_test.cc
//     native/core/safetensors.cc native/core/weights.cc -o /tmp/safetensors_test
// Optional argument: fuzz seed (default 12345). Last line: "N passed, M failed".
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "error.h"
#include "safetensors.h"
#include "weights.h"

using omniseg::SafeTensors;
using omniseg::WeightStore;

static int g_pass = 0, g_fail = 0;

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (cond) {                                                                  \
      ++g_pass;                                                                  \
    } else {                                                                     \
      ++g_fail;                                                                  \
      std::fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);       \
    }                                                                            \
  } while (0)

// Runs fn; passes iff it throws omniseg::Error whose message contains `want`.
static void expectError(const char* label, const std::function<void()>& fn,
                        const std::string& want) {
  try {
    fn();
    ++g_fail;
    std::fprintf(stderr, "FAIL [%s]: no exception (wanted \"%s\")\n", label, want.c_str());
  } catch (const omniseg::Error& e) {
    if (std::string(e.what()).find(want) != std::string::npos) {
      ++g_pass;
    } else {
      ++g_fail;
      std::fprintf(stderr, "FAIL [%s]: message \"%s\" lacks \"%s\"\n", label, e.what(),
                   want.c_str());
    }
  } catch (const std::exception& e) {
    ++g_fail;
    std::fprintf(stderr, "FAIL [%s]: non-omniseg exception: %s\n", label, e.what());
  }
}

// Builds a safetensors byte string. pad: pad the header with spaces to 8 bytes.
static std::string makeFile(std::string header, const std::string& data, bool pad = true) {
  if (pad)
    while (header.size() % 8) header += ' ';
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

static std::string rawLen(uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out;
}

template <typename T>
static std::string bytesOf(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// Parses bytes from an exact-size heap copy, so ASan sees any over-read.
static void parseMem(const std::string& bytes) {
  std::vector<uint8_t> copy(bytes.begin(), bytes.end());
  SafeTensors::fromMemory(copy.data(), copy.size());
}

static std::string tmpDir;
static std::vector<std::string> tmpFiles;

static std::string writeTmp(const std::string& name, const std::string& bytes) {
  std::string path = tmpDir + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) {
    std::perror("fopen");
    std::exit(2);
  }
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  tmpFiles.push_back(path);
  return path;
}

static uint32_t bitsOf(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// ---------------------------------------------------------------------------------
static const std::vector<float> kF32 = {1.0f, -2.0f, 0.5f, 3.25f, -0.0f, 1e-30f};
static const std::vector<uint16_t> kF16 = {0x3C00, 0xC100, 0x7BFF, 0x0001, 0x7C00,
                                           0x7E00, 0x8000, 0x03FF, 0x0400, 0xFC00};
static const std::vector<uint16_t> kBF16 = {0x3F80, 0xC000, 0x7F80, 0x7FC0, 0x0001, 0x4049};

static std::string validFile() {
  std::string data = bytesOf(kF32) + bytesOf(kF16) + bytesOf(kBF16);
  std::string header =
      "{\"__metadata__\":{\"format\":\"pt\",\"model\":\"sam\"},"
      "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[44,56]},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
      "\"h\":{\"dtype\":\"F16\",\"shape\":[10],\"data_offsets\":[24,44]}}";
  return makeFile(header, data);
}

static void testValid() {
  std::string path = writeTmp("valid.safetensors", validFile());
  auto st = SafeTensors::open(path);
  CHECK(st->isMapped());
  CHECK(st->path() == path);
  CHECK(st->tensors().size() == 3);
  CHECK(st->tensors()[0].name == "a" && st->tensors()[1].name == "h" &&
        st->tensors()[2].name == "b");  // offset order, not header order
  CHECK(st->metadata().size() == 2 && st->metadata().at("model") == "sam");
  const auto* h = st->find("h");
  CHECK(h && h->dtype == omniseg::DType::F16 && h->shape == std::vector<int64_t>{10});
  CHECK(st->find("zzz") == nullptr);
  CHECK(std::string(SafeTensors::dtypeName(omniseg::DType::BF16)) == "BF16");
  const uint8_t* mapBegin = st->mappingBegin();
  const size_t mapSize = st->mappingSize();

  WeightStore ws(std::move(st));
  CHECK(ws.bytesMapped() == mapSize);
  CHECK(ws.has("a") && !ws.has("nope"));
  const float* a = ws.get("a", {2, 3});
  CHECK(reinterpret_cast<const uint8_t*>(a) >= mapBegin &&
        reinterpret_cast<const uint8_t*>(a) + 24 <= mapBegin + mapSize);  // zero copy
  bool same = true;
  for (size_t i = 0; i < kF32.size(); ++i) same &= bitsOf(a[i]) == bitsOf(kF32[i]);
  CHECK(same);
  CHECK(ws.bytesConverted() == 0);

  const float* f = ws.get("h", std::vector<int64_t>{10});
  CHECK(reinterpret_cast<uintptr_t>(f) % 64 == 0);
  CHECK(f[0] == 1.0f);
  CHECK(f[1] == -2.5f);
  CHECK(f[2] == 65504.0f);
  CHECK(f[3] == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(std::isinf(f[4]) && f[4] > 0);
  CHECK(std::isnan(f[5]));
  CHECK(bitsOf(f[6]) == 0x80000000u);                 // -0
  CHECK(f[7] == 1023.0f * std::ldexp(1.0f, -24));     // largest subnormal
  CHECK(f[8] == std::ldexp(1.0f, -14));               // smallest normal
  CHECK(std::isinf(f[9]) && f[9] < 0);
  CHECK(ws.get("h", {10}) == f);  // cached buffer

  const float* b = ws.get("b", {2, 3});
  CHECK(b[0] == 1.0f && b[1] == -2.0f);
  CHECK(std::isinf(b[2]) && std::isnan(b[3]));
  CHECK(b[4] == std::ldexp(1.0f, -133));
  CHECK(bitsOf(b[5]) == 0x40490000u);
  CHECK(ws.bytesConverted() == (10 + 6) * sizeof(float));
  bool ok = true;
  try {
    ws.checkAllUsed();
  } catch (const omniseg::Error&) {
    ok = false;
  }
  CHECK(ok);
}

// getStacked: F32 (mapped), BF16 (converted) and the stacked result; shape errors name the key.
static void testStacked() {
  std::string path = writeTmp("stacked.safetensors", validFile());
  WeightStore ws(SafeTensors::open(path));
  const float* ab = ws.getStacked({"a", "b"}, {2, 3});  // [2, 2, 3]
  CHECK(reinterpret_cast<uintptr_t>(ab) % 64 == 0);
  bool same = true;
  for (size_t i = 0; i < kF32.size(); ++i) same &= bitsOf(ab[i]) == bitsOf(kF32[i]);
  CHECK(same);
  const float* b = ws.get("b", {2, 3});
  for (int i = 0; i < 6; ++i) same &= std::isnan(b[i]) ? std::isnan(ab[6 + i]) : bitsOf(ab[6 + i]) == bitsOf(b[i]);
  CHECK(same);
  CHECK(ws.getStacked({"a", "b"}, {2, 3}) == ab);  // cached
  size_t listed = 0;  // the stacked buffer is handed out; "a" itself was not
  for (const auto& t : ws.handedOut()) {
    if (t.data == ab) CHECK(t.count == 12);
    listed += t.data == ab;
  }
  CHECK(listed == 1);
  CHECK(ws.handedOut().size() == 2);  // the stacked buffer and "b"
  bool threw = false;
  try {
    ws.getStacked({"a", "h"}, {2, 3});
  } catch (const omniseg::Error& e) {
    threw = std::string(e.what()).find("\"h\"") != std::string::npos;
  }
  CHECK(threw);
  ws.markUsed("h");
  bool ok = true;
  try {
    ws.checkAllUsed();  // a and b were marked used by getStacked
  } catch (const omniseg::Error&) {
    ok = false;
  }
  CHECK(ok);
}

// Tensors spanning whole pages: getStacked releases their pages from the mapping; reading them
// afterwards (zero copy) faults the same bytes back in from the file.
static void testReleasedPagesReadBack() {
  const int n = 8192;  // 32 KiB per tensor
  std::vector<float> x(n), y(n);
  for (int i = 0; i < n; ++i) x[i] = 0.5f * i, y[i] = -1.0f * i;
  std::string header = "{\"x\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string(n) + "],\"data_offsets\":[0," +
                       std::to_string(4 * n) + "]},\"y\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string(n) +
                       "],\"data_offsets\":[" + std::to_string(4 * n) + "," + std::to_string(8 * n) + "]}}";
  std::string path = writeTmp("pages.safetensors", makeFile(header, bytesOf(x) + bytesOf(y)));
  WeightStore ws(SafeTensors::open(path));
  const float* xy = ws.getStacked({"x", "y"}, {n});
  const float* xs = ws.get("x", {n});
  const float* ys = ws.get("y", {n});
  bool same = true;
  for (int i = 0; i < n; ++i) same &= xy[i] == x[i] && xy[n + i] == y[i] && xs[i] == x[i] && ys[i] == y[i];
  CHECK(same);
}

// Resident pages of this process (/proc/self/statm, second field).
static long residentPages() {
  long size = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident;
}

// releaseMapped (a packed copy now serves the tensor): the pages of a zero-copy tensor leave the
// resident set and read back unchanged from the file; an owned buffer (here: the stacked one) is
// left alone, whatever range is named.
static void testReleaseMappedReadBack() {
  const int n = 1 << 20;  // 4 MiB: the kernel's resident counts are batched, off by tens of pages
  std::vector<float> x(n);
  for (int i = 0; i < n; ++i) x[i] = 0.25f * (i % 4096) - 7.f;
  std::string header = "{\"x\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string(n) + "],\"data_offsets\":[0," +
                       std::to_string(4 * n) + "]}}";
  std::string path = writeTmp("release.safetensors", makeFile(header, bytesOf(x)));
  WeightStore ws(SafeTensors::open(path));
  const float* xs = ws.get("x", {n});
  bool read = true;
  for (int i = 0; i < n; ++i) read &= xs[i] == x[i];  // resident now
  CHECK(read);
  // (mincore would report the page cache, which keeps the file: the process's resident pages
  // are what drops, by all 1024 pages but the statistics' slack)
  const long page = ::sysconf(_SC_PAGESIZE);
  const long before = residentPages();
  CHECK(ws.bytesMappedKept() == ws.bytesMapped());
  ws.releaseMapped(xs, n);
  CHECK(before - residentPages() >= 4L * n / page / 2);
  // counted: the whole pages inside the tensor (its first and last may be partial)
  const size_t released = ws.bytesMapped() - ws.bytesMappedKept();
  CHECK(released % page == 0 && released <= 4u * n && released + 2 * page >= 4u * n);
  bool same = true;
  for (int i = 0; i < n; ++i) same &= xs[i] == x[i];
  CHECK(same);
  ws.releaseMapped(xs, n);  // (released again: counted once)
  CHECK(ws.bytesMapped() - ws.bytesMappedKept() == released);
  const float* stacked = ws.getStacked({"x"}, {n});  // (releases x's pages a third time)
  CHECK(ws.bytesMapped() - ws.bytesMappedKept() == released);
  ws.releaseMapped(stacked, n);
  CHECK(ws.bytesMapped() - ws.bytesMappedKept() == released);  // (an owned buffer: nothing released)
  same = true;
  for (int i = 0; i < n; ++i) same &= stacked[i] == x[i];
  CHECK(same);
}

static void testHalfExhaustive() {
#ifdef __FLT16_MAX__
  int bad = 0;
  for (uint32_t i = 0; i < 65536; ++i) {
    uint16_t h = static_cast<uint16_t>(i);
    _Float16 x;
    std::memcpy(&x, &h, 2);
    float want = static_cast<float>(x), got = WeightStore::halfToFloat(h);
    if (std::isnan(want) ? !std::isnan(got) : bitsOf(want) != bitsOf(got)) ++bad;
  }
  CHECK(bad == 0);
#endif
}

static void testMisalignedF32() {
  // Header of 9 bytes ("{}"-free object needs more): no padding -> data at offset 8+N.
  std::string header = "{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}";
  if ((8 + header.size()) % 4 == 0) header += " ";
  std::string file = makeFile(header, bytesOf(std::vector<float>{1.5f, -7.0f, 3e8f}), false);
  std::string path = writeTmp("misaligned.safetensors", file);
  WeightStore ws(SafeTensors::open(path));
  const float* x = ws.get("x", {3});
  CHECK(reinterpret_cast<uintptr_t>(x) % 64 == 0);
  CHECK(x[0] == 1.5f && x[1] == -7.0f && x[2] == 3e8f);
  CHECK(ws.bytesConverted() == 12);
}

static void testEdgeValid() {
  bool ok = true;
  try {
    parseMem(makeFile("{}", ""));  // no tensors at all
    // an empty tensor and a scalar: their shapes and byte ranges as written
    const std::string file = makeFile("{\"e\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[0,0]},"
                                      "\"s\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}",
                                      "x");
    std::vector<uint8_t> copy(file.begin(), file.end());
    const auto st = SafeTensors::fromMemory(copy.data(), copy.size());
    const auto* e = st->find("e");
    const auto* sc = st->find("s");
    CHECK(st->tensors().size() == 2 && e != nullptr && sc != nullptr);
    if (e != nullptr && sc != nullptr) {
      CHECK(e->dtype == omniseg::DType::F32 && e->shape == std::vector<int64_t>({0, 4}) && e->begin == 0 && e->end == 0);
      CHECK(sc->dtype == omniseg::DType::U8 && sc->shape.empty() && sc->begin == 0 && sc->end == 1);
      CHECK(*st->bytes(*sc) == 'x');
    }
  } catch (const omniseg::Error& e) {
    std::fprintf(stderr, "unexpected: %s\n", e.what());
    ok = false;
  }
  CHECK(ok);
}

static std::string one(const std::string& entry, const std::string& data) {
  return makeFile("{\"t\":" + entry + "}", data);
}

static void testMalformed() {
  const std::string d24(24, '\0');
  auto mem = [](const std::string& bytes) { return [bytes] { parseMem(bytes); }; };
  expectError("truncated length", mem(std::string("\x05\0\0", 3)), "too short");
  expectError("length too big", mem(rawLen(200ull << 20) + "{}"), "exceeds the limit");
  expectError("length past eof", mem(rawLen(1000) + "{}"), "runs past the end");
  expectError("not json", mem(makeFile("{\"a\": nope}", "")), "header is not valid JSON");
  expectError("bad utf8", mem(makeFile("{\"\xff\":1}", "")), "header is not valid JSON");
  expectError("not object", mem(makeFile("[1,2]", "")), "header must be a JSON object");
  expectError("entry not obj", mem(makeFile("{\"t\":5}", "")), "tensor \"t\": entry must be");
  expectError("no dtype", mem(one("{\"shape\":[1],\"data_offsets\":[0,4]}", "abcd")),
              "missing \"dtype\"");
  expectError("dtype type", mem(one("{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}",
                                    "abcd")),
              "\"dtype\" must be a string");
  expectError("unknown dtype",
              mem(one("{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,4]}", "abcd")),
              "unknown dtype \"F128\"");
  expectError("no shape", mem(one("{\"dtype\":\"F32\",\"data_offsets\":[0,4]}", "abcd")),
              "missing \"shape\"");
  expectError("no offsets", mem(one("{\"dtype\":\"F32\",\"shape\":[1]}", "abcd")),
              "missing \"data_offsets\"");
  expectError("3 offsets",
              mem(one("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,4]}", "abcd")),
              "array of two integers");
  expectError("neg offset",
              mem(one("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}", "abcd")),
              "two non-negative integers");
  expectError("begin>end",
              mem(one("{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}", "abcd")),
              "begin > end");
  expectError("mismatch",
              mem(makeFile("{\"vision_encoder.layers.0.attn.qkv.weight\":{\"dtype\":\"F32\","
                           "\"shape\":[2304,768],\"data_offsets\":[0,100]}}",
                           std::string(100, '\0'))),
              "tensor \"vision_encoder.layers.0.attn.qkv.weight\": shape [2304, 768] with "
              "dtype F32 needs 7077888 bytes but data_offsets span 100");
  expectError("out of range",
              mem(one("{\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[0,24]}", "abcd")),
              "out of range");
  expectError("negative shape",
              mem(one("{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}", "abcd")),
              "non-negative integer, got -1");
  expectError("float shape",
              mem(one("{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}", "abcd")),
              "non-negative integer");
  expectError("huge shape",
              mem(one("{\"dtype\":\"F32\",\"shape\":[18446744073709551615],"
                      "\"data_offsets\":[0,4]}", "abcd")),
              "non-negative integer");
  expectError("overflow",
              mem(one("{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],"
                      "\"data_offsets\":[0,4]}", "abcd")),
              "overflows a 64-bit byte count");
  const std::string a = "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}";
  expectError("overlap",
              mem(makeFile("{" + a + ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
                           "\"data_offsets\":[8,16]}}", std::string(16, '\0'))),
              "tensor \"b\": byte range [8, 16) overlaps tensor \"a\"");
  expectError("gap",
              mem(makeFile("{" + a + ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
                           "\"data_offsets\":[20,28]}}", std::string(28, '\0'))),
              "gap of 4 bytes");
  expectError("gap at start",
              mem(makeFile("{\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
                           "\"data_offsets\":[4,12]}}", std::string(12, '\0'))),
              "gap of 4 bytes");
  expectError("trailing", mem(makeFile("{" + a + "}", std::string(20, '\0'))),
              "4 trailing bytes");
  expectError("trailing, no tensors", mem(makeFile("{}", "xy")), "2 trailing bytes");
  expectError("metadata value",
              mem(makeFile("{\"__metadata__\":{\"k\":1}}", "")),
              "__metadata__ value for key \"k\" must be a string");
  expectError("metadata type", mem(makeFile("{\"__metadata__\":[]}", "")),
              "__metadata__ must be an object");
  expectError("duplicate tensor",
              mem(makeFile("{" + a + "," + a + "}", std::string(16, '\0'))),
              "duplicate key \"a\" in header");
  expectError("duplicate field",
              mem(one("{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],"
                      "\"data_offsets\":[0,4]}", "abcd")),
              "tensor \"t\": duplicate key \"dtype\"");
  // Errors from open() name the path.
  std::string bad = writeTmp("bad.safetensors", makeFile("{" + a + "}", std::string(8, 0)));
  expectError("path in message", [&] { SafeTensors::open(bad); }, bad + ": tensor \"a\"");
  std::string empty = writeTmp("empty.safetensors", "");
  expectError("empty file", [&] { SafeTensors::open(empty); }, empty + ": file is 0 bytes");
  expectError("directory", [&] { SafeTensors::open(tmpDir); },
              "cannot open " + tmpDir + ": Is a directory");
  expectError("missing file", [&] { SafeTensors::open(tmpDir + "/nope"); },
              "No such file or directory");
}

static void testWeightStoreErrors() {
  std::string header = "{";
  std::string data;
  const char* names[] = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"};
  for (int i = 0; i < 8; ++i) {
    if (i) header += ",";
    header += std::string("\"") + names[i] + "\":{\"dtype\":\"" + (i == 7 ? "I32" : "F32") +
              "\",\"shape\":[2,3],\"data_offsets\":[" + std::to_string(24 * i) + "," +
              std::to_string(24 * i + 24) + "]}";
    data += std::string(24, '\0');
  }
  std::string path = writeTmp("store.safetensors", makeFile(header + "}", data));
  WeightStore ws(SafeTensors::open(path));
  expectError("missing key", [&] { ws.get("nope", {2, 3}); },
              "missing tensor \"nope\" in " + path);
  expectError("wrong shape", [&] { ws.get("k0", {3, 2}); },
              "tensor \"k0\" has shape [2, 3] but the model configuration expects [3, 2]");
  expectError("wrong rank", [&] { ws.get("k0", {6}); }, "expects [6]");
  expectError("int dtype", [&] { ws.get("k7", {2, 3}); }, "has dtype I32");
  ws.get("k0", {2, 3});
  ws.markUsed("k1");
  ws.markUsed("not-there");  // no-op
  expectError("unused", [&] { ws.checkAllUsed(); },
              "unexpected tensor(s) in " + path +
                  ": \"k2\", \"k3\", \"k4\", \"k5\", \"k6\" (+1 more) \xE2\x80\x94 is this the "
                  "right model type?");
  for (int i = 2; i < 8; ++i) ws.markUsed(names[i]);
  bool ok = true;
  try {
    ws.checkAllUsed();
  } catch (const omniseg::Error&) {
    ok = false;
  }
  CHECK(ok);
}

// Random mutations/truncations: must only ever throw omniseg::Error (or succeed).
static void testFuzz(uint32_t seed) {
  std::mt19937 rng(seed);
  const std::string base = validFile();
  const size_t headerEnd = 8 + (static_cast<uint8_t>(base[0]) | (base[1] << 8));
  int other = 0, accepted = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    std::string m = base;
    const int kind = static_cast<int>(rng() % 5);
    if (kind == 0) {  // truncate
      m.resize(rng() % m.size());
    } else if (kind == 1) {  // random byte flips anywhere
      for (int k = 1 + static_cast<int>(rng() % 8); k > 0; --k) m[rng() % m.size()] = char(rng());
    } else if (kind == 2) {  // header-only byte changes
      for (int k = 1 + static_cast<int>(rng() % 4); k > 0; --k)
        m[8 + rng() % (headerEnd - 8)] = char(rng());
    } else if (kind == 3) {  // swap a digit in the header for another digit
      size_t pos = 8 + rng() % (headerEnd - 8);
      while (pos < headerEnd && !(m[pos] >= '0' && m[pos] <= '9')) ++pos;
      if (pos < headerEnd) m[pos] = static_cast<char>('0' + rng() % 10);
    } else {  // mess with the length prefix
      m[rng() % 8] = char(rng());
    }
    std::vector<uint8_t> buf(m.begin(), m.end());
    try {
      auto st = SafeTensors::fromMemory(buf.data(), buf.size());
      WeightStore ws(std::move(st));
      for (const auto& t : ws.file().tensors()) {
        try {
          const float* p = ws.get(t.name, t.shape);
          size_t n = (t.end - t.begin) / SafeTensors::dtypeSize(t.dtype);
          volatile float sink = 0;
          for (size_t i = 0; i < n; ++i) sink = sink + p[i];
        } catch (const omniseg::Error&) {  // e.g. integer dtype after mutation
        }
      }
      ++accepted;
    } catch (const omniseg::Error&) {
    } catch (...) {
      ++other;
    }
  }
  CHECK(other == 0);
  std::printf("fuzz: seed %u, 2000 mutations, %d accepted, rest rejected\n", seed, accepted);
}

int main(int argc, char** argv) {
  uint32_t seed = argc > 1 ? static_cast<uint32_t>(std::strtoul(argv[1], nullptr, 10)) : 12345;
  char tmpl[] = "/tmp/omniseg_st_XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    return 2;
  }
  tmpDir = tmpl;
  testValid();
  testHalfExhaustive();
  testMisalignedF32();
  testEdgeValid();
  testMalformed();
  testWeightStoreErrors();
  testStacked();
  testReleasedPagesReadBack();
  testReleaseMappedReadBack();
  testFuzz(seed);
  for (const auto& f : tmpFiles) unlink(f.c_str());
  rmdir(tmpDir.c_str());
  std::printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail == 0 ? 0 : 1;
}
