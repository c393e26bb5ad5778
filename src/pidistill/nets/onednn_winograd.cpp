#include "pidistill/nets/onednn_winograd.h"

#include "pidistill/util/error.h"

#include <ATen/ATen.h>

#ifdef PIDISTILL_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>
#endif

namespace pidistill {

#ifdef PIDISTILL_HAVE_ONEDNN
namespace {

using dnnl::memory;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// Scratchpads are ours (one per call), so one primitive can run in several worker threads at once.
dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// The three primitives of one layer shape; oneDNN picks their memory layouts (blocked, and its own for the
// transformed filters), so plain NCHW / OIHW tensors are reordered in and out around each call.
struct WinogradLayer {
  dnnl::convolution_forward::primitive_desc forward;
  dnnl::convolution_backward_data::primitive_desc input_gradient;
  dnnl::convolution_backward_weights::primitive_desc weight_gradient;
  memory::desc x_plain, w_plain, y_plain;
};

using Shape = std::array<int64_t, 5>;  // N, C, K, H, W

std::shared_ptr<const WinogradLayer> make_layer(const Shape& s) {
  const int64_t N = s[0], C = s[1], K = s[2], H = s[3], W = s[4];
  using tag = memory::format_tag;
  const auto f32 = memory::data_type::f32;
  const memory::dims xd{N, C, H, W}, wd{K, C, 3, 3}, yd{N, K, H, W}, one{1, 1};
  const memory::desc x_any(xd, f32, tag::any), w_any(wd, f32, tag::any), y_any(yd, f32, tag::any);
  const auto alg = dnnl::algorithm::convolution_winograd;
  auto& engine = cpu_engine();
  const auto attr = user_scratchpad();
  try {
    dnnl::convolution_forward::primitive_desc forward(
        dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, x_any, w_any, y_any, one, one, one),
        attr, engine);
    dnnl::convolution_backward_data::primitive_desc input_gradient(
        dnnl::convolution_backward_data::desc(alg, x_any, w_any, y_any, one, one, one), attr, engine, forward);
    dnnl::convolution_backward_weights::primitive_desc weight_gradient(
        dnnl::convolution_backward_weights::desc(alg, x_any, w_any, y_any, one, one, one), attr, engine, forward);
    return std::make_shared<const WinogradLayer>(WinogradLayer{
        forward, input_gradient, weight_gradient, memory::desc(xd, f32, tag::nchw), memory::desc(wd, f32, tag::oihw),
        memory::desc(yd, f32, tag::nchw)});
  } catch (const dnnl::error&) {
    return nullptr;  // no Winograd kernel for this CPU or shape
  }
}

// Per shape, made once (primitive descriptors take oneDNN's kernel generation); nullptr where it has none.
std::shared_ptr<const WinogradLayer> layer(const Shape& s) {
  static std::mutex mutex;
  static std::map<Shape, std::shared_ptr<const WinogradLayer>> layers;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = layers.find(s);
  if (it == layers.end()) it = layers.emplace(s, make_layer(s)).first;
  return it->second;
}

at::Tensor buffer_for(const memory::desc& desc) {
  return at::empty({static_cast<int64_t>((desc.get_size() + 3) / 4)}, at::kFloat);
}

// Runs p with args and, where its descriptor asks for one, a scratchpad of its own.
void execute(const dnnl::primitive& p, const memory::desc& scratchpad, std::unordered_map<int, memory> args,
             dnnl::stream& stream) {
  at::Tensor scratch;
  if (scratchpad.get_size() > 0) {
    scratch = buffer_for(scratchpad);
    args.emplace(DNNL_ARG_SCRATCHPAD, memory(scratchpad, cpu_engine(), scratch.data_ptr<float>()));
  }
  p.execute(stream, args);
}

void reorder(const memory& from, const memory& to, dnnl::stream& stream) {
  auto& engine = cpu_engine();
  dnnl::reorder::primitive_desc pd(engine, from.get_desc(), engine, to.get_desc(), user_scratchpad());
  execute(dnnl::reorder(pd), pd.scratchpad_desc(), {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}}, stream);
}

// One call's oneDNN work: its stream, and the tensors its memories point into (kept alive until it has waited).
struct Call {
  dnnl::stream stream{cpu_engine()};
  std::vector<at::Tensor> buffers;

  // A oneDNN memory over tensor t (laid out as plain_desc once contiguous), reordered into `wanted` when the
  // primitive wants another layout.
  memory input(const at::Tensor& t, const memory::desc& plain_desc, const memory::desc& wanted) {
    buffers.push_back(t.contiguous());
    memory plain(plain_desc, cpu_engine(), buffers.back().data_ptr<float>());
    if (wanted == plain_desc) return plain;
    buffers.push_back(buffer_for(wanted));
    memory target(wanted, cpu_engine(), buffers.back().data_ptr<float>());
    reorder(plain, target, stream);
    return target;
  }

  // Runs p on `inputs`, its output `out_arg` in layout `wanted`, and returns that output as a plain tensor.
  template <class Primitive, class PrimitiveDesc>
  at::Tensor output(const PrimitiveDesc& pd, std::unordered_map<int, memory> inputs, int out_arg,
                    const memory::desc& wanted, const memory::desc& plain_desc, at::IntArrayRef sizes) {
    auto out = at::empty(sizes, at::kFloat);
    const bool plain = wanted == plain_desc;
    at::Tensor buffer = plain ? out : buffer_for(wanted);
    memory produced(wanted, cpu_engine(), buffer.data_ptr<float>());
    inputs.emplace(out_arg, produced);
    execute(Primitive(pd), pd.scratchpad_desc(), std::move(inputs), stream);
    if (!plain) reorder(produced, memory(plain_desc, cpu_engine(), out.data_ptr<float>()), stream);
    stream.wait();
    return out;
  }
};

std::shared_ptr<const WinogradLayer> checked_layer(const Shape& s) {
  auto l = layer(s);
  if (!l) fail("", "oneDNN has no Winograd convolution for this shape or CPU (check onednn_winograd_supports first)");
  return l;
}

}  // namespace

bool onednn_winograd_available() {
  static const bool available = layer({1, 16, 16, 16, 16}) != nullptr;
  return available;
}

bool onednn_winograd_supports(int64_t N, int64_t C, int64_t K, int64_t H, int64_t W) {
  return N > 0 && C > 0 && K > 0 && H > 0 && W > 0 && layer({N, C, K, H, W}) != nullptr;
}

at::Tensor onednn_winograd_forward(const at::Tensor& x, const at::Tensor& w) {
  const int64_t N = x.size(0), C = x.size(1), K = w.size(0), H = x.size(2), W = x.size(3);
  auto l = checked_layer({N, C, K, H, W});
  const auto& pd = l->forward;
  Call call;
  memory x_in = call.input(x, l->x_plain, pd.src_desc()), w_in = call.input(w, l->w_plain, pd.weights_desc());
  return call.output<dnnl::convolution_forward>(pd, {{DNNL_ARG_SRC, x_in}, {DNNL_ARG_WEIGHTS, w_in}}, DNNL_ARG_DST,
                                                pd.dst_desc(), l->y_plain, {N, K, H, W});
}

OneDnnGradients onednn_winograd_backward(const at::Tensor& x, const at::Tensor& w, const at::Tensor& gy,
                                         bool input_gradient, bool weight_gradient) {
  const int64_t N = x.size(0), C = x.size(1), K = w.size(0), H = x.size(2), W = x.size(3);
  auto l = checked_layer({N, C, K, H, W});
  const auto& data = l->input_gradient;
  const auto& weights = l->weight_gradient;
  Call call;
  OneDnnGradients out;
  memory gy_data;
  if (input_gradient) {
    gy_data = call.input(gy, l->y_plain, data.diff_dst_desc());
    memory w_data = call.input(w, l->w_plain, data.weights_desc());
    using BackwardData = dnnl::convolution_backward_data;
    out.x = call.output<BackwardData>(data, {{DNNL_ARG_DIFF_DST, gy_data}, {DNNL_ARG_WEIGHTS, w_data}},
                                      DNNL_ARG_DIFF_SRC, data.diff_src_desc(), l->x_plain, {N, C, H, W});
  }
  if (weight_gradient) {
    // dL/dy is reordered once where both gradients want it in the same layout.
    const bool reuse = input_gradient && weights.diff_dst_desc() == data.diff_dst_desc();
    memory gy_weights = reuse ? gy_data : call.input(gy, l->y_plain, weights.diff_dst_desc());
    memory x_weights = call.input(x, l->x_plain, weights.src_desc());
    using BackwardWeights = dnnl::convolution_backward_weights;
    out.w = call.output<BackwardWeights>(weights, {{DNNL_ARG_SRC, x_weights}, {DNNL_ARG_DIFF_DST, gy_weights}},
                                         DNNL_ARG_DIFF_WEIGHTS, weights.diff_weights_desc(), l->w_plain, {K, C, 3, 3});
  }
  return out;
}

#else  // built without oneDNN's headers (libdnnl-dev): no F(4x4, 3x3) kernel

bool onednn_winograd_available() { return false; }
bool onednn_winograd_supports(int64_t, int64_t, int64_t, int64_t, int64_t) { return false; }
namespace {
[[noreturn]] void unavailable() { fail("", "this build has no oneDNN Winograd kernel (built without libdnnl-dev)"); }
}  // namespace
at::Tensor onednn_winograd_forward(const at::Tensor&, const at::Tensor&) { unavailable(); }
OneDnnGradients onednn_winograd_backward(const at::Tensor&, const at::Tensor&, const at::Tensor&, bool, bool) {
  unavailable();
}

#endif

}  // namespace pidistill
