// Promise-returning AsyncWorkers: the work runs in Execute() (off the JS thread), a C++ exception
// rejects the promise with the matching JS error class; result() builds the value the promise
// resolves to, and an exception there (a JS allocation that fails) rejects it too, instead of
// escaping to the event loop with the promise never settled.
#pragma once
#include <napi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "addon/common.h"

namespace omniseg::addon {

// Argument checks in the addon are a last line of defence: lib/ validates everything first, with
// the user-facing messages. These only keep malformed calls from reaching C++ code.
inline void require(Napi::Env env, bool ok, const char* what) {
  if (!ok) throw Napi::TypeError::New(env, std::string("omniseg native: invalid argument: ") + what);
}
inline void require(Napi::Env env, bool ok, const std::string& what) { require(env, ok, what.c_str()); }

// A copy of `v`, which must be a typed array of `type` (elements T) and, when `expected` is given,
// of exactly that many elements: what a worker reads later, off the JS thread, while the caller
// may change or detach its buffer.
template <class T>
std::vector<T> copyTypedArray(Napi::Env env, Napi::Value v, napi_typedarray_type type, const std::string& what,
                              size_t expected = SIZE_MAX) {
  require(env, v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == type, what);
  auto ta = v.As<Napi::TypedArrayOf<T>>();
  require(env, expected == SIZE_MAX || ta.ElementLength() == expected, what);
  return std::vector<T>(ta.Data(), ta.Data() + ta.ElementLength());
}

class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env)
      : Napi::AsyncWorker(env), deferred(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise::Deferred deferred;

  // The model whose memory to measure again once the call settles (after its worker handed its
  // arena back), before the promise does.
  PromiseWorker* track(std::shared_ptr<ModelMemory> memory) {
    memory_ = std::move(memory);
    return this;
  }

  // Queues the worker (which deletes itself when done) and returns its promise.
  Napi::Promise queue() {
    auto promise = deferred.Promise();
    Queue();
    return promise;
  }

 protected:
  void Execute() override {
    // (an empty message would read as success to node-addon-api, and result() would run)
    if (!capture(error_, [this] { run(); })) {
      if (error_.message.empty()) error_.message = "unknown error";
      SetError(error_.message);
    }
  }
  void OnError(const Napi::Error&) override {
    if (memory_) memory_->update(Env());
    deferred.Reject(error_.toJs(Env()).Value());
  }
  void OnOK() final {
    if (memory_) memory_->update(Env());
    try {
      deferred.Resolve(result());
    } catch (const Napi::Error& e) {
      deferred.Reject(e.Value());
    } catch (const std::exception& e) {
      deferred.Reject(Napi::Error::New(Env(), e.what()).Value());
    }
  }
  virtual void run() = 0;               // off the JS thread
  virtual Napi::Value result() = 0;     // on it, once run() returned
  PendingError error_;
  std::shared_ptr<ModelMemory> memory_;
};

}  // namespace omniseg::addon
