// Shared pieces of the N-API layer: per-environment constructors (the addon is context-aware:
// one copy per worker thread / realm), error conversion, zero-copy result buffers.
#pragma once
#include <napi.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/error.h"

namespace omniseg::addon {

struct AddonData {
  Napi::FunctionReference samModel;
  Napi::FunctionReference embedding;
  Napi::FunctionReference clipSegModel;
  Napi::FunctionReference clipSegImage;
};

inline AddonData& data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

// options.cpuMatmul of a load call: 'bf16x3' (the default) or 'fp32'; anything else throws.
inline CpuMatmul cpuMatmulOption(Napi::Env env, Napi::Object options) {
  Napi::Value v = options.Get("cpuMatmul");
  if (v.IsUndefined()) return CpuMatmul::Bf16x3;
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s != "bf16x3" && s != "fp32") throw Napi::TypeError::New(env, "options.cpuMatmul must be 'bf16x3' or 'fp32'");
  return s == "fp32" ? CpuMatmul::Fp32 : CpuMatmul::Bf16x3;
}

inline const char* cpuMatmulName(CpuMatmul m) { return m == CpuMatmul::Bf16x3 ? "bf16x3" : "fp32"; }

// Error raised in a worker thread, thrown later on the JS thread with the matching class.
struct PendingError {
  std::string message;
  ErrorKind kind = ErrorKind::Generic;
  Napi::Error toJs(Napi::Env env) const {
    switch (kind) {
      case ErrorKind::Type: return Napi::TypeError::New(env, message);
      case ErrorKind::Range: return Napi::RangeError::New(env, message);
      default: return Napi::Error::New(env, message);
    }
  }
};

// Runs fn, converting any C++ exception into a PendingError. Returns false on error.
template <class Fn>
bool capture(PendingError& err, Fn&& fn) {
  try {
    fn();
    return true;
  } catch (const Error& e) {
    err = {e.what(), e.kind()};
  } catch (const std::bad_alloc&) {
    err = {"out of memory", ErrorKind::Generic};
  } catch (const std::exception& e) {
    err = {e.what(), ErrorKind::Generic};
  }
  return false;
}

// Runs fn on the JS thread; a C++ exception becomes a thrown JS error of the matching class.
template <class Fn>
auto onJsThread(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  PendingError err;
  decltype(fn()) result;
  if (!capture(err, [&] { result = fn(); })) throw err.toJs(env);
  return result;
}

// Hands a vector's memory to JS as an ArrayBuffer without copying (the buffer owns the vector);
// copies where the runtime refuses external buffers (e.g. Electron's V8 sandbox).
template <class T, class A>
Napi::ArrayBuffer toArrayBuffer(Napi::Env env, std::vector<T, A>&& v) {
  using Vec = std::vector<T, A>;
  // An external buffer without memory reads as detached in V8: empty results get a plain one.
  if (v.empty()) return Napi::ArrayBuffer::New(env, 0);
  auto* owned = new Vec(std::move(v));
  const size_t bytes = owned->size() * sizeof(T);
  napi_value ab;
  napi_status st = napi_create_external_arraybuffer(
      env, owned->data(), bytes,
      [](napi_env, void*, void* hint) { delete static_cast<Vec*>(hint); }, owned, &ab);
  if (st == napi_ok) return Napi::ArrayBuffer(env, ab);
  Napi::ArrayBuffer copy = Napi::ArrayBuffer::New(env, bytes);
  if (bytes) std::memcpy(copy.Data(), owned->data(), bytes);
  delete owned;
  return copy;
}

// A vector handed to JS as the typed array of its element type, without copying (toArrayBuffer).
template <class T, class A>
Napi::TypedArrayOf<T> toTypedArray(Napi::Env env, std::vector<T, A>&& v) {
  const size_t n = v.size();
  return Napi::TypedArrayOf<T>::New(env, n, toArrayBuffer(env, std::move(v)), 0);
}

// Base of the addon's wrapped classes: each object is marked with its class's type tag
// (`T::kTypeTag`, napi_type_tag_object) when it is made, and whatever takes one back from JS
// checks that tag. InstanceOf follows the prototype chain and Symbol.hasInstance, so another
// class's object given the prototype passed it and was read as this class (a segfault); and V8
// checks the receiver of a method, not of an accessor, which read another object's memory.
template <class T>
class TaggedWrap : public Napi::ObjectWrap<T> {
 public:
  explicit TaggedWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<T>(info) {
    info.This().As<Napi::Object>().TypeTag(&T::kTypeTag);
  }

  // `v`'s wrapped object, or a TypeError naming `what`.
  static T* from(Napi::Env env, Napi::Value v, const char* what) {
    const bool tagged = v.IsObject() && v.As<Napi::Object>().CheckTypeTag(&T::kTypeTag);
    T* wrap = tagged ? Napi::ObjectWrap<T>::Unwrap(v.As<Napi::Object>()) : nullptr;
    if (!wrap) throw Napi::TypeError::New(env, std::string("omniseg native: invalid argument: ") + what);
    return wrap;
  }

  // The receiver's wrapped object, for node-addon-api's method and accessor callbacks (they call
  // T::Unwrap, which this hides, then the member function): a TypeError unless the receiver is of
  // this class. The member call on another class's object was undefined behaviour (UBSan's vptr
  // check stops on it), whatever the member function checked first.
  static T* Unwrap(Napi::Object receiver) {
    return from(receiver.Env(), receiver, "the receiver must be an object of its class");
  }
};

// Native memory a JS object holds, reported to V8 (napi_adjust_external_memory) for as long as it
// holds it, so that the garbage collector weighs it: without it an embedding dropped undisposed
// counted as its few hundred bytes of wrapper, and 5000 of them (tens of GiB at sam-vit-base's
// size) waited for a collection nothing asked for. The C API, whose failure is ignored: release()
// runs in finalizers.
class ExternalMemory {
 public:
  // Reports `bytes` held from now on, by the change only: taking all back and reporting all again
  // lowered V8's limit and then passed it, a full collection after every call of a model holding
  // more than 64 MiB (Node 20).
  void hold(Napi::Env env, int64_t bytes) {
    bytes = std::max<int64_t>(bytes, 0);
    int64_t total = 0;
    if (bytes != bytes_ && napi_adjust_external_memory(env, bytes - bytes_, &total) == napi_ok) bytes_ = bytes;
  }
  void release(Napi::Env env) {
    int64_t total = 0;
    if (bytes_ > 0) napi_adjust_external_memory(env, -bytes_, &total);
    bytes_ = 0;
  }

 private:
  int64_t bytes_ = 0;
};

// A loaded model's native memory (ExternalMemory), measured again after each of its calls, as the
// scratch its workers keep grows: a model dropped without dispose() held its arenas (1.29 GB for 8
// tiny models after large decodes) while V8 saw a wrapper of a few hundred bytes. Shared by the
// model's JS object and its calls' workers; once closed (disposed, finalized), updates are ignored.
// JS thread only.
class ModelMemory {
 public:
  explicit ModelMemory(std::function<int64_t()> measure) : measure_(std::move(measure)) {}
  void update(Napi::Env env) {
    if (measure_) external_.hold(env, measure_());
  }
  void close(Napi::Env env) {
    measure_ = nullptr;
    external_.release(env);
  }

 private:
  std::function<int64_t()> measure_;
  ExternalMemory external_;
};

// The ModelMemory of `model` (any class with heldBytes()), measured once; it does not keep the
// model alive.
template <class Model>
std::shared_ptr<ModelMemory> modelMemory(Napi::Env env, const std::shared_ptr<Model>& model) {
  auto memory = std::make_shared<ModelMemory>([weak = std::weak_ptr<Model>(model)] {
    const auto m = weak.lock();
    return m ? m->heldBytes() : 0;
  });
  memory->update(env);
  return memory;
}

}  // namespace omniseg::addon
