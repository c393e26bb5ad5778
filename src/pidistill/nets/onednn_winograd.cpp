#include "pidistill/nets/onednn_winograd.h"

#include "pidistill/util/error.h"

#include <ATen/ATen.h>

#ifdef PIDISTILL_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>

#include <array>
#include <map>
#include <unordered_map>
#include <memory>
#include <mutex>
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

// A oneDNN memory over `plain` (a contiguous tensor laid out as plain_desc), reordered into `wanted` when the
// primitive wants another layout. `keep` holds the buffer.
memory as_layout(const at::Tensor& plain, const memory::desc& plain_desc, const memory::desc& wanted,
                 dnnl::stream& stream, at::Tensor& keep) {
  auto& engine = cpu_engine();
  memory source(plain_desc, engine, plain.data_ptr<float>());
  if (wanted == plain_desc) return source;
  keep = buffer_for(wanted);
  memory target(wanted, engine, keep.data_ptr<float>());
  reorder(source, target, stream);
  return target;
}

// Runs `primitive` (of descriptor pd) on two plain inputs and returns its output as a plain tensor.
template <class PrimitiveDesc, class Primitive>
at::Tensor run(const PrimitiveDesc& pd, int arg_a, const at::Tensor& a, const memory::desc& a_plain,
               const memory::desc& a_wanted, int arg_b, const at::Tensor& b, const memory::desc& b_plain,
               const memory::desc& b_wanted, int arg_out, const memory::desc& out_plain, const memory::desc& out_wanted,
               at::IntArrayRef out_sizes) {
  auto& engine = cpu_engine();
  dnnl::stream stream(engine);
  const at::Tensor ac = a.contiguous(), bc = b.contiguous();
  at::Tensor keep_a, keep_b;
  memory ma = as_layout(ac, a_plain, a_wanted, stream, keep_a);
  memory mb = as_layout(bc, b_plain, b_wanted, stream, keep_b);
  auto out = at::empty(out_sizes, at::kFloat);
  at::Tensor out_buffer = out_wanted == out_plain ? out : buffer_for(out_wanted);
  memory mo(out_wanted, engine, out_buffer.data_ptr<float>());
  execute(Primitive(pd), pd.scratchpad_desc(), {{arg_a, ma}, {arg_b, mb}, {arg_out, mo}}, stream);
  if (!(out_wanted == out_plain)) reorder(mo, memory(out_plain, engine, out.data_ptr<float>()), stream);
  stream.wait();
  return out;
}

std::shared_ptr<const WinogradLayer> checked_layer(const at::Tensor& x, int64_t K) {
  auto l = layer({x.size(0), x.size(1), K, x.size(2), x.size(3)});
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
  auto l = checked_layer(x, w.size(0));
  const auto& pd = l->forward;
  return run<dnnl::convolution_forward::primitive_desc, dnnl::convolution_forward>(
      pd, DNNL_ARG_SRC, x, l->x_plain, pd.src_desc(), DNNL_ARG_WEIGHTS, w, l->w_plain, pd.weights_desc(), DNNL_ARG_DST,
      l->y_plain, pd.dst_desc(), {x.size(0), w.size(0), x.size(2), x.size(3)});
}

at::Tensor onednn_winograd_input_gradient(const at::Tensor& gy, const at::Tensor& w) {
  // The layer is keyed by the forward's shape: input channels w.size(1), output channels w.size(0).
  auto l = layer({gy.size(0), w.size(1), w.size(0), gy.size(2), gy.size(3)});
  if (!l) fail("", "oneDNN has no Winograd convolution for this shape or CPU");
  const auto& pd = l->input_gradient;
  return run<dnnl::convolution_backward_data::primitive_desc, dnnl::convolution_backward_data>(
      pd, DNNL_ARG_DIFF_DST, gy, l->y_plain, pd.diff_dst_desc(), DNNL_ARG_WEIGHTS, w, l->w_plain, pd.weights_desc(),
      DNNL_ARG_DIFF_SRC, l->x_plain, pd.diff_src_desc(), {gy.size(0), w.size(1), gy.size(2), gy.size(3)});
}

at::Tensor onednn_winograd_weight_gradient(const at::Tensor& x, const at::Tensor& gy) {
  auto l = checked_layer(x, gy.size(1));
  const auto& pd = l->weight_gradient;
  return run<dnnl::convolution_backward_weights::primitive_desc, dnnl::convolution_backward_weights>(
      pd, DNNL_ARG_SRC, x, l->x_plain, pd.src_desc(), DNNL_ARG_DIFF_DST, gy, l->y_plain, pd.diff_dst_desc(),
      DNNL_ARG_DIFF_WEIGHTS, l->w_plain, pd.diff_weights_desc(), {gy.size(1), x.size(1), 3, 3});
}

#else  // built without oneDNN's headers (libdnnl-dev): no F(4x4, 3x3) kernel

bool onednn_winograd_available() { return false; }
bool onednn_winograd_supports(int64_t, int64_t, int64_t, int64_t, int64_t) { return false; }
namespace {
[[noreturn]] void unavailable() { fail("", "this build has no oneDNN Winograd kernel (built without libdnnl-dev)"); }
}  // namespace
at::Tensor onednn_winograd_forward(const at::Tensor&, const at::Tensor&) { unavailable(); }
at::Tensor onednn_winograd_input_gradient(const at::Tensor&, const at::Tensor&) { unavailable(); }
at::Tensor onednn_winograd_weight_gradient(const at::Tensor&, const at::Tensor&) { unavailable(); }

#endif

}  // namespace pidistill
