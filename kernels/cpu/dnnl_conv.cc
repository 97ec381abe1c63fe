// oneDNN convolutions (dnnl_conv.h): primitive cache, per-thread execution
// state, weights reordered per call.
//
// Two cache levels, as in dnnl_gemm.cc: a shared map from Key to the
// immutable Plan (primitive descriptors JIT-compile: milliseconds), taken
// under a mutex only on a thread's first call for a key, and a thread_local
// map from the same key to that thread's memory objects, argument arrays,
// scratchpad and weight buffers, so cached calls take no lock and threads
// never share mutable state. Execution goes through the C API with prebuilt
// argument arrays. Engine and shared cache are leaked on purpose (thread_local
// state of the main thread is destroyed at exit and must not outlive them).
#include "kernels/cpu/dnnl_conv.h"

#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/check.h"
#include "kernels/cpu/dnnl_gemm.h"

namespace anvil::kernels::cpu {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;

enum class Kind : uint8_t { kForward, kBackwardData, kBackwardWeights };

struct Key {
  Kind kind;
  ConvGeometry g;
  DType type;       // compute dtype: x (forward, backward weights) or dy (backward data)
  DType w_type;     // caller's weights (forward, backward data)
  DType out_type;   // y (forward) or dx (backward data)
  DType bias_type;  // forward bias; kF32 when absent
  bool has_bias;
  int32_t nt;
  bool operator==(const Key&) const = default;
};

struct KeyHash {
  size_t operator()(const Key& k) const {
    uint64_t h = 0;
    auto mix = [&h](uint64_t v) { h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2); };
    for (int64_t v : {k.g.B, k.g.H, k.g.W, k.g.C, k.g.OC, k.g.KH, k.g.KW, k.g.stride_h,
                      k.g.stride_w, k.g.pad_h, k.g.pad_w}) {
      mix(static_cast<uint64_t>(v));
    }
    mix(static_cast<uint64_t>(k.kind) | static_cast<uint64_t>(k.type) << 8 |
        static_cast<uint64_t>(k.w_type) << 16 | static_cast<uint64_t>(k.out_type) << 24 |
        static_cast<uint64_t>(k.bias_type) << 32 | static_cast<uint64_t>(k.has_bias) << 40 |
        static_cast<uint64_t>(static_cast<uint32_t>(k.nt)) << 44);
    return static_cast<size_t>(h);
  }
};

// Immutable once built; shared by every thread that runs this key.
// `ok` false: oneDNN has no such convolution here (the caller widens).
struct Plan {
  bool ok = false;
  dnnl::primitive prim;
  std::string impl;
  memory::desc act_in_md, act_out_md;  // forward: x, y; backward data: dy, dx; weights: x, dy
  memory::desc wei_md;                 // the primitive's weights (or diff weights) layout
  memory::desc user_wei_md;            // (OC,C,KH,KW) plain, caller's dtype
  memory::desc bias_md, scratch_md;
  // Forward / backward data: user weights -> wei_md, absent when equal.
  // Backward weights: wei_md -> user weights with sum (always present).
  bool has_reorder = false;
  dnnl::reorder wei_reorder;
  memory::desc reorder_scratch_md;
};

struct ThreadPlan {
  std::shared_ptr<const Plan> plan;
  memory act_in, act_out, user_wei, wei, bias, scratch, reorder_scratch;
  std::vector<dnnl_exec_arg_t> args, reorder_args;
};

struct ThreadCache {
  dnnl::stream stream;
  std::unordered_map<Key, ThreadPlan, KeyHash> plans;
};

struct SharedCache {
  std::mutex mu;
  std::unordered_map<Key, std::shared_ptr<const Plan>, KeyHash> plans;
};

[[noreturn]] void Fail(const char* what, const char* detail) {
  std::fprintf(stderr, "anvil: oneDNN convolution: %s: %s\n", what, detail);
  std::fflush(stderr);
  std::abort();
}

void Check(dnnl_status_t s, const char* what) {
  if (s != dnnl_success) Fail(what, "status != dnnl_success");
}

const dnnl::engine& Engine() {
  static const dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

SharedCache& Shared() {
  static SharedCache* cache = new SharedCache;
  return *cache;
}

ThreadCache& Local() {
  thread_local ThreadCache cache{dnnl::stream(Engine()), {}};
  return cache;
}

memory::data_type ToDnnl(DType t) {
  return t == DType::kBF16 ? memory::data_type::bf16 : memory::data_type::f32;
}

memory::desc Nhwc(int64_t b, int64_t h, int64_t w, int64_t c, DType t) {
  return memory::desc({b, c, h, w}, ToDnnl(t), Tag::nhwc);
}
memory::desc In(const ConvGeometry& g, DType t) { return Nhwc(g.B, g.H, g.W, g.C, t); }
memory::desc Out(const ConvGeometry& g, DType t) { return Nhwc(g.B, g.OH(), g.OW(), g.OC, t); }
memory::desc Weights(const ConvGeometry& g, DType t, Tag tag) {
  return memory::desc({g.OC, g.C, g.KH, g.KW}, ToDnnl(t), tag);
}

dnnl::primitive_attr UserScratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// Forward descriptor of this geometry (also the hint of the backward ones).
dnnl::convolution_forward::primitive_desc ForwardPd(const Key& k, DType x_type, DType y_type,
                                                    bool has_bias, DType bias_type) {
  const ConvGeometry& g = k.g;
  const memory::dims strides{g.stride_h, g.stride_w}, pad{g.pad_h, g.pad_w};
  const memory::desc x = In(g, x_type), w = Weights(g, x_type, Tag::any), y = Out(g, y_type);
  using F = dnnl::convolution_forward;
  const F::desc desc =
      has_bias ? F::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, x,
                         w, memory::desc({g.OC}, ToDnnl(bias_type), Tag::x), y, strides, pad, pad)
               : F::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, x,
                         w, y, strides, pad, pad);
  return F::primitive_desc(desc, UserScratchpad(), Engine());
}

void SetReorder(Plan& plan, const memory::desc& from, const memory::desc& to, bool sum) {
  dnnl::primitive_attr attr = UserScratchpad();
  if (sum) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  const dnnl::reorder::primitive_desc pd(Engine(), from, Engine(), to, attr);
  plan.wei_reorder = dnnl::reorder(pd);
  plan.reorder_scratch_md = pd.scratchpad_desc();
  plan.has_reorder = true;
}

std::shared_ptr<const Plan> MakePlan(const Key& k) {
  auto plan = std::make_shared<Plan>();
  const ConvGeometry& g = k.g;
  const memory::dims strides{g.stride_h, g.stride_w}, pad{g.pad_h, g.pad_w};
  try {
    switch (k.kind) {
      case Kind::kForward: {
        const auto pd = ForwardPd(k, k.type, k.out_type, k.has_bias, k.bias_type);
        plan->act_in_md = pd.src_desc();
        plan->act_out_md = pd.dst_desc();
        plan->wei_md = pd.weights_desc();
        if (k.has_bias) plan->bias_md = pd.bias_desc();
        plan->scratch_md = pd.scratchpad_desc();
        plan->impl = pd.impl_info_str();
        plan->prim = dnnl::convolution_forward(pd);
        break;
      }
      case Kind::kBackwardData: {
        const auto hint = ForwardPd(k, k.type, k.type, false, DType::kF32);
        using BD = dnnl::convolution_backward_data;
        const BD::desc desc(dnnl::algorithm::convolution_direct, In(g, k.out_type),
                            Weights(g, k.type, Tag::any), Out(g, k.type), strides, pad, pad);
        const BD::primitive_desc pd(desc, UserScratchpad(), Engine(), hint);
        plan->act_in_md = pd.diff_dst_desc();
        plan->act_out_md = pd.diff_src_desc();
        plan->wei_md = pd.weights_desc();
        plan->scratch_md = pd.scratchpad_desc();
        plan->impl = pd.impl_info_str();
        plan->prim = BD(pd);
        break;
      }
      case Kind::kBackwardWeights: {
        const auto hint = ForwardPd(k, k.type, k.type, k.has_bias, DType::kF32);
        using BW = dnnl::convolution_backward_weights;
        const memory::desc dw = Weights(g, DType::kF32, Tag::any);
        const BW::desc desc = k.has_bias
                                  ? BW::desc(dnnl::algorithm::convolution_direct, In(g, k.type), dw,
                                             memory::desc({g.OC}, memory::data_type::f32, Tag::x),
                                             Out(g, k.type), strides, pad, pad)
                                  : BW::desc(dnnl::algorithm::convolution_direct, In(g, k.type), dw,
                                             Out(g, k.type), strides, pad, pad);
        const BW::primitive_desc pd(desc, UserScratchpad(), Engine(), hint);
        plan->act_in_md = pd.src_desc();
        plan->act_out_md = pd.diff_dst_desc();
        plan->wei_md = pd.diff_weights_desc();
        if (k.has_bias) plan->bias_md = pd.diff_bias_desc();
        plan->scratch_md = pd.scratchpad_desc();
        plan->impl = pd.impl_info_str();
        plan->prim = BW(pd);
        break;
      }
    }
  } catch (const dnnl::error& e) {
    if (e.status != dnnl_unimplemented) Fail("creating the convolution primitive", e.what());
    const bool all_f32 = k.type == DType::kF32 && k.w_type == DType::kF32 &&
                         k.out_type == DType::kF32 && k.bias_type == DType::kF32;
    if (all_f32) Fail("creating an fp32 convolution primitive", e.what());
    return plan;  // not ok: the caller widens to fp32
  }
  try {
    if (k.kind == Kind::kBackwardWeights) {
      plan->user_wei_md = Weights(g, DType::kF32, Tag::oihw);
      SetReorder(*plan, plan->wei_md, plan->user_wei_md, /*sum=*/true);
    } else {
      plan->user_wei_md = Weights(g, k.w_type, Tag::oihw);
      if (plan->user_wei_md != plan->wei_md) {
        SetReorder(*plan, plan->user_wei_md, plan->wei_md, /*sum=*/false);
      }
    }
  } catch (const dnnl::error& e) {
    Fail("creating the weights reorder", e.what());
  }
  plan->ok = true;
  return plan;
}

std::shared_ptr<const Plan> SharedPlan(const Key& key) {
  SharedCache& shared = Shared();
  std::lock_guard<std::mutex> lock(shared.mu);
  auto it = shared.plans.find(key);
  if (it == shared.plans.end()) it = shared.plans.emplace(key, MakePlan(key)).first;
  return it->second;
}

// DNNL_MEMORY_NONE: the caller's pointer is set per call.
memory External(const memory::desc& md) { return memory(md, Engine(), DNNL_MEMORY_NONE); }
memory Owned(const memory::desc& md) { return memory(md, Engine()); }

ThreadPlan MakeThreadPlan(Kind kind, std::shared_ptr<const Plan> plan) {
  ThreadPlan tp;
  const Plan& p = *plan;
  tp.plan = std::move(plan);
  if (!p.ok) return tp;
  tp.act_in = External(p.act_in_md);
  tp.act_out = External(p.act_out_md);
  tp.user_wei = External(p.user_wei_md);
  // Forward/backward data read the caller's weights directly when no
  // reorder is needed; backward weights always writes its own buffer.
  tp.wei = p.has_reorder ? Owned(p.wei_md) : tp.user_wei;
  switch (kind) {
    case Kind::kForward:
      tp.args = {{DNNL_ARG_SRC, tp.act_in.get()},
                 {DNNL_ARG_WEIGHTS, tp.wei.get()},
                 {DNNL_ARG_DST, tp.act_out.get()}};
      if (!p.bias_md.is_zero()) {
        tp.bias = External(p.bias_md);
        tp.args.push_back({DNNL_ARG_BIAS, tp.bias.get()});
      }
      break;
    case Kind::kBackwardData:
      tp.args = {{DNNL_ARG_DIFF_DST, tp.act_in.get()},
                 {DNNL_ARG_WEIGHTS, tp.wei.get()},
                 {DNNL_ARG_DIFF_SRC, tp.act_out.get()}};
      break;
    case Kind::kBackwardWeights:
      tp.args = {{DNNL_ARG_SRC, tp.act_in.get()},
                 {DNNL_ARG_DIFF_DST, tp.act_out.get()},
                 {DNNL_ARG_DIFF_WEIGHTS, tp.wei.get()}};
      if (!p.bias_md.is_zero()) {
        tp.bias = Owned(p.bias_md);
        tp.args.push_back({DNNL_ARG_DIFF_BIAS, tp.bias.get()});
      }
      break;
  }
  if (p.scratch_md.get_size() > 0) {
    tp.scratch = Owned(p.scratch_md);
    tp.args.push_back({DNNL_ARG_SCRATCHPAD, tp.scratch.get()});
  }
  if (p.has_reorder) {
    const bool to_user = kind == Kind::kBackwardWeights;
    tp.reorder_args = {{DNNL_ARG_FROM, to_user ? tp.wei.get() : tp.user_wei.get()},
                       {DNNL_ARG_TO, to_user ? tp.user_wei.get() : tp.wei.get()}};
    if (p.reorder_scratch_md.get_size() > 0) {
      tp.reorder_scratch = Owned(p.reorder_scratch_md);
      tp.reorder_args.push_back({DNNL_ARG_SCRATCHPAD, tp.reorder_scratch.get()});
    }
  }
  return tp;
}

void SetHandle(const memory& m, const void* p) {
  // oneDNN takes a non-const handle for inputs too; it does not write them.
  Check(dnnl_memory_set_data_handle(m.get(), const_cast<void*>(p)), "set_data_handle");
}

void Exec(const dnnl::primitive& prim, const std::vector<dnnl_exec_arg_t>& args,
          const dnnl::stream& stream) {
  Check(
      dnnl_primitive_execute(prim.get(), stream.get(), static_cast<int>(args.size()), args.data()),
      "dnnl_primitive_execute");
  Check(dnnl_stream_wait(stream.get()), "dnnl_stream_wait");
}

bool IsFloat(DType t) { return t == DType::kF32 || t == DType::kBF16; }

void CheckGeometry(const ConvGeometry& g) {
  ANVIL_KCHECK(g.B >= 1 && g.H >= 1 && g.W >= 1 && g.C >= 1 && g.OC >= 1, "Conv: empty shape");
  ANVIL_KCHECK(g.KH >= 1 && g.KW >= 1 && g.stride_h >= 1 && g.stride_w >= 1, "Conv: kernel/stride");
  ANVIL_KCHECK(g.pad_h >= 0 && g.pad_w >= 0, "Conv: negative padding");
  ANVIL_KCHECK(g.OH() >= 1 && g.OW() >= 1, "Conv: kernel larger than the padded input");
}

// Runs `body` with the calling thread's plan for `key` (built on first use)
// under the thread count oneDNN must see; false when the plan is not ok.
template <class Body>
bool WithPlan(int nt, Key key, const Body& body) {
  CheckGeometry(key.g);
  ANVIL_KCHECK(nt >= 1, "Conv: nt must be >= 1");
  // bf16 compute where the CPU has no bf16 dot products: oneDNN would
  // emulate it far below its fp32 rate, so the caller widens (the rule and
  // the measurement are in dnnl_gemm.h, Bf16Path).
  if (key.type == DType::kBF16 && !DnnlHasNativeBf16()) return false;
  if (omp_in_parallel()) nt = 1;
  key.nt = nt;
  const int saved_nt = omp_get_max_threads();
  if (saved_nt != nt) omp_set_num_threads(nt);
  ThreadCache& local = Local();
  auto it = local.plans.find(key);
  if (it == local.plans.end()) {
    it = local.plans.emplace(key, MakeThreadPlan(key.kind, SharedPlan(key))).first;
  }
  const bool ok = it->second.plan->ok;
  if (ok) body(it->second, local.stream);
  if (saved_nt != nt) omp_set_num_threads(saved_nt);
  return ok;
}

// Forward and backward data: reorder the caller's weights when needed.
void PrepareWeights(ThreadPlan& tp, const void* w, const dnnl::stream& s) {
  SetHandle(tp.user_wei, w);
  if (tp.plan->has_reorder) Exec(tp.plan->wei_reorder, tp.reorder_args, s);
}

Key ForwardKey(const ConvGeometry& g, DType x_type, DType w_type, bool has_bias, DType bias_type,
               DType y_type) {
  return Key{Kind::kForward, g, x_type, w_type, y_type, has_bias ? bias_type : DType::kF32,
             has_bias,       0};
}

}  // namespace

bool DnnlConvForward(int nt, const ConvGeometry& g, const ConvForwardArgs& a) {
  ANVIL_KCHECK(a.x != nullptr && a.w != nullptr && a.y != nullptr, "ConvForward: null operand");
  ANVIL_KCHECK(IsFloat(a.x_type) && IsFloat(a.w_type) && IsFloat(a.y_type) &&
                   (a.bias == nullptr || IsFloat(a.bias_type)),
               "ConvForward: operands must be F32 or BF16");
  const bool has_bias = a.bias != nullptr;
  return WithPlan(nt, ForwardKey(g, a.x_type, a.w_type, has_bias, a.bias_type, a.y_type),
                  [&a, has_bias](ThreadPlan& tp, const dnnl::stream& s) {
                    PrepareWeights(tp, a.w, s);
                    SetHandle(tp.act_in, a.x);
                    SetHandle(tp.act_out, a.y);
                    if (has_bias) SetHandle(tp.bias, a.bias);
                    Exec(tp.plan->prim, tp.args, s);
                  });
}

bool DnnlConvBackwardData(int nt, const ConvGeometry& g, const ConvBackwardDataArgs& a) {
  ANVIL_KCHECK(a.dx != nullptr && a.dy != nullptr && a.w != nullptr,
               "ConvBackwardData: null operand");
  ANVIL_KCHECK(IsFloat(a.dx_type) && IsFloat(a.dy_type) && IsFloat(a.w_type),
               "ConvBackwardData: operands must be F32 or BF16");
  const Key key{Kind::kBackwardData, g, a.dy_type, a.w_type, a.dx_type, DType::kF32, false, 0};
  return WithPlan(nt, key, [&a](ThreadPlan& tp, const dnnl::stream& s) {
    PrepareWeights(tp, a.w, s);
    SetHandle(tp.act_in, a.dy);
    SetHandle(tp.act_out, a.dx);
    Exec(tp.plan->prim, tp.args, s);
  });
}

bool DnnlConvBackwardWeights(int nt, const ConvGeometry& g, const ConvBackwardWeightsArgs& a) {
  ANVIL_KCHECK(a.dw != nullptr && a.x != nullptr && a.dy != nullptr,
               "ConvBackwardWeights: null operand");
  ANVIL_KCHECK(IsFloat(a.type), "ConvBackwardWeights: operands must be F32 or BF16");
  const bool has_bias = a.db != nullptr;
  const Key key{
      Kind::kBackwardWeights, g, a.type, DType::kF32, DType::kF32, DType::kF32, has_bias, 0};
  return WithPlan(nt, key, [&a, &g, has_bias](ThreadPlan& tp, const dnnl::stream& s) {
    SetHandle(tp.act_in, a.x);
    SetHandle(tp.act_out, a.dy);
    Exec(tp.plan->prim, tp.args, s);
    SetHandle(tp.user_wei, a.dw);
    Exec(tp.plan->wei_reorder, tp.reorder_args, s);  // dw += (sum post-op)
    if (has_bias) {
      const float* db = static_cast<const float*>(tp.bias.get_data_handle());
      for (int64_t o = 0; o < g.OC; ++o) a.db[o] += db[o];
    }
  });
}

const char* DnnlConvImplName(int nt, const ConvGeometry& g, DType type) {
  const char* name = "unimplemented";
  WithPlan(nt, ForwardKey(g, type, type, false, DType::kF32, type),
           [&name](ThreadPlan& tp, const dnnl::stream&) { name = tp.plan->impl.c_str(); });
  return name;
}

bool DnnlConvReorderWeightsOnly(int nt, const ConvGeometry& g, DType type, const void* w,
                                DType w_type) {
  return WithPlan(nt, ForwardKey(g, type, w_type, false, DType::kF32, type),
                  [w](ThreadPlan& tp, const dnnl::stream& s) { PrepareWeights(tp, w, s); });
}

}  // namespace anvil::kernels::cpu
