#include "pidistill/nets/winograd_conv.h"

#include "pidistill/nets/onednn_winograd.h"

#include "pidistill/util/error.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <torch/autograd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <vector>

namespace pidistill {

namespace {
std::atomic<int> chosen_algorithm{int(ConvAlgorithm::Direct)};

// Defaults (WinogradFloors): F(2x2, 3x3) below 128 channels: the 32- and 64-channel layers of the bundled teacher
// ran 0.6-0.9x of direct, the 128- and 256-channel ones of CIFAR-10's DDPM++ 1.2-1.5x (AMD EPYC). F(4x4, 3x3)
// (oneDNN, Xeon, bench_conv): 1.1-2.2x direct from 16x16 and ~2^24 N*C*K*H*W up (16 x 32 -> 32 at 32x32; every
// CIFAR-10 layer at 16x16 or 32x32), but 0.63x at 8x8, 0.5-0.9x for small batches of small layers
// (4 x 32 -> 32 at 32x32, batch 1 of the bundled teacher) and 0.7x for the 3-channel input layer.
std::mutex floors_mutex;
WinogradFloors floors;
WinogradFloors current_floors() {
  std::lock_guard<std::mutex> lock(floors_mutex);
  return floors;
}
constexpr int64_t kF4MinChannels = 16;

// The output tiles (2x2 each) of all images, in rows of tw tiles: row r = n * th + i holds tiles (n, i, 0..tw-1).
// The rows are cut into blocks of `rows` rows, so that each block's 16 matrix products stay in cache; the last
// block is padded with empty rows. In a block, tile q = (r - b * rows) * tw + j.
struct TileGrid {
  int64_t N, H, W, th, tw, rows, block, blocks;
  TileGrid(int64_t n, int64_t h, int64_t w) : N(n), H(h), W(w) {
    th = (H + 1) / 2;
    tw = (W + 1) / 2;
    rows = std::min(std::max<int64_t>(1, kBlockTiles / tw), N * th);
    block = rows * tw;
    blocks = (N * th + rows - 1) / rows;
  }
  static constexpr int64_t kBlockTiles = 256;
};

// The 4 image rows under tile row i of plane xc (zero outside: the padding of 1), each with one zero column on
// both sides: rows[u][1 + x] = xc[2i - 1 + u][x].
void padded_rows(const float* xc, const TileGrid& g, int64_t i, float* rows, int64_t width) {
  for (int u = 0; u < 4; ++u) {
    float* row = rows + u * width;
    std::fill(row, row + width, 0.f);
    const int64_t y = 2 * i - 1 + u;
    if (y >= 0 && y < g.H) std::copy(xc + y * g.W, xc + (y + 1) * g.W, row + 1);
  }
}

// V[b][e][c][q] = (B^T d B)[e] for the 4x4 input patch d of tile q of block b, channel c.
// B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]: first on the 4 rows, then on each tile's 4 columns.
void input_transform(const float* x, int64_t C, const TileGrid& g, float* V) {
  const int64_t plane = g.H * g.W, width = 2 * g.tw + 2, stride_e = C * g.block;
  at::parallel_for(0, g.blocks * C, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> rows(4 * width), t(4 * width);
    for (int64_t bc = lo; bc < hi; ++bc) {
      const int64_t b = bc / C, c = bc % C;
      for (int64_t rr = 0; rr < g.rows; ++rr) {
        float* v = V + (b * 16 * C + c) * g.block + rr * g.tw;
        const int64_t r = b * g.rows + rr;
        if (r >= g.N * g.th) {
          for (int e = 0; e < 16; ++e) std::fill(v + e * stride_e, v + e * stride_e + g.tw, 0.f);
          continue;
        }
        padded_rows(x + ((r / g.th) * C + c) * plane, g, r % g.th, rows.data(), width);
        const float *d0 = rows.data(), *d1 = d0 + width, *d2 = d1 + width, *d3 = d2 + width;
        float *t0 = t.data(), *t1 = t0 + width, *t2 = t1 + width, *t3 = t2 + width;
        for (int64_t s = 0; s < width; ++s) {
          t0[s] = d0[s] - d2[s];
          t1[s] = d1[s] + d2[s];
          t2[s] = d2[s] - d1[s];
          t3[s] = d1[s] - d3[s];
        }
        for (int u = 0; u < 4; ++u) {
          const float* tu = t.data() + u * width;
          float *o0 = v + 4 * u * stride_e, *o1 = o0 + stride_e, *o2 = o1 + stride_e, *o3 = o2 + stride_e;
          for (int64_t j = 0; j < g.tw; ++j) {
            const float a = tu[2 * j], b1 = tu[2 * j + 1], b2 = tu[2 * j + 2], b3 = tu[2 * j + 3];
            o0[j] = a - b2;
            o1[j] = b1 + b2;
            o2[j] = b2 - b1;
            o3[j] = b1 - b3;
          }
        }
      }
    }
  });
}

// y[n][k] tile = A^T M A with M[e] = M[b][e][k][q]; A^T = [[1,1,1,0],[0,1,-1,-1]]. The parts of tiles past the
// image's edge (odd H or W) are dropped.
void output_transform(const float* M, int64_t K, const TileGrid& g, float* y) {
  const int64_t plane = g.H * g.W, stride_e = K * g.block, tw = g.tw;
  at::parallel_for(0, g.blocks * K, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> t(8 * tw), out(2 * tw);
    for (int64_t bk = lo; bk < hi; ++bk) {
      const int64_t b = bk / K, k = bk % K;
      for (int64_t rr = 0; rr < g.rows; ++rr) {
        const int64_t r = b * g.rows + rr;
        if (r >= g.N * g.th) break;
        const float* m = M + (b * 16 * K + k) * g.block + rr * tw;
        for (int s = 0; s < 4; ++s) {  // t[a][s][j] = (A^T M)[a][s] of tile j
          const float *m0 = m + s * stride_e, *m1 = m0 + 4 * stride_e, *m2 = m1 + 4 * stride_e, *m3 = m2 + 4 * stride_e;
          float *ta = t.data() + s * tw, *tb = t.data() + (4 + s) * tw;
          for (int64_t j = 0; j < tw; ++j) {
            ta[j] = m0[j] + m1[j] + m2[j];
            tb[j] = m1[j] - m2[j] - m3[j];
          }
        }
        const int64_t i = r % g.th;
        float* yk = y + ((r / g.th) * K + k) * plane;
        for (int a = 0; a < 2 && 2 * i + a < g.H; ++a) {
          const float *s0 = t.data() + 4 * a * tw, *s1 = s0 + tw, *s2 = s1 + tw, *s3 = s2 + tw;
          float* row = out.data();
          for (int64_t j = 0; j < tw; ++j) {
            row[2 * j] = s0[j] + s1[j] + s2[j];
            row[2 * j + 1] = s1[j] - s2[j] - s3[j];
          }
          std::copy(row, row + g.W, yk + (2 * i + a) * g.W);
        }
      }
    }
  });
}

// The adjoint of output_transform: dM[b][e][k][q] = (A dY A^T)[e] for the 2x2 gradient tile dY (zero past the edge).
// A dY A^T of a 2x2 tile: on rows and then columns, (d0, d1) -> (d0, d0 + d1, d0 - d1, -d1).
void output_transform_adjoint(const float* gy, int64_t K, const TileGrid& g, float* dM) {
  const int64_t plane = g.H * g.W, stride_e = K * g.block, tw = g.tw, width = 2 * tw;
  at::parallel_for(0, g.blocks * K, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> rows(2 * width), t(4 * width);
    for (int64_t bk = lo; bk < hi; ++bk) {
      const int64_t b = bk / K, k = bk % K;
      for (int64_t rr = 0; rr < g.rows; ++rr) {
        float* m = dM + (b * 16 * K + k) * g.block + rr * tw;
        const int64_t r = b * g.rows + rr;
        if (r >= g.N * g.th) {
          for (int e = 0; e < 16; ++e) std::fill(m + e * stride_e, m + e * stride_e + tw, 0.f);
          continue;
        }
        const int64_t i = r % g.th;
        const float* gk = gy + ((r / g.th) * K + k) * plane;
        std::fill(rows.begin(), rows.end(), 0.f);
        for (int a = 0; a < 2 && 2 * i + a < g.H; ++a) std::copy(gk + (2 * i + a) * g.W, gk + (2 * i + a + 1) * g.W, rows.data() + a * width);
        const float *d0 = rows.data(), *d1 = d0 + width;
        float *t0 = t.data(), *t1 = t0 + width, *t2 = t1 + width, *t3 = t2 + width;
        for (int64_t s = 0; s < width; ++s) {
          t0[s] = d0[s];
          t1[s] = d0[s] + d1[s];
          t2[s] = d0[s] - d1[s];
          t3[s] = -d1[s];
        }
        for (int u = 0; u < 4; ++u) {
          const float* tu = t.data() + u * width;
          float *o0 = m + 4 * u * stride_e, *o1 = o0 + stride_e, *o2 = o1 + stride_e, *o3 = o2 + stride_e;
          for (int64_t j = 0; j < tw; ++j) {
            const float a = tu[2 * j], c = tu[2 * j + 1];
            o0[j] = a;
            o1[j] = a + c;
            o2[j] = a - c;
            o3[j] = -c;
          }
        }
      }
    }
  });
}

// kron(G, G) [16, 9]: vec(G g G^T) = kron(G, G) vec(g) for a 3x3 filter g; G = [[1,0,0],[.5,.5,.5],[.5,-.5,.5],[0,0,1]].
const at::Tensor& filter_transform_matrix() {
  static const at::Tensor kron_gg = [] {
    auto G = at::tensor({1.f, 0.f, 0.f, .5f, .5f, .5f, .5f, -.5f, .5f, 0.f, 0.f, 1.f}).reshape({4, 3});
    return at::kron(G, G);
  }();
  return kron_gg;
}

// U[e][k][c] = (G w[k][c] G^T)[e], G = [[1,0,0],[.5,.5,.5],[.5,-.5,.5],[0,0,1]]: on the rows, then the columns.
at::Tensor filter_transform(const at::Tensor& w_in) {
  auto w = w_in.contiguous();
  const int64_t K = w.size(0), C = w.size(1), KC = K * C;
  auto U = at::empty({16, K, C}, w.options());
  const float* src = w.data_ptr<float>();
  float* dst = U.data_ptr<float>();
  at::parallel_for(0, KC, 1024, [&](int64_t lo, int64_t hi) {
    for (int64_t f = lo; f < hi; ++f) {
      const float* g = src + 9 * f;
      float t[4][3];
      for (int s = 0; s < 3; ++s) {
        t[0][s] = g[s];
        t[1][s] = .5f * (g[s] + g[3 + s] + g[6 + s]);
        t[2][s] = .5f * (g[s] - g[3 + s] + g[6 + s]);
        t[3][s] = g[6 + s];
      }
      for (int u = 0; u < 4; ++u) {
        float* o = dst + 4 * u * KC + f;
        o[0] = t[u][0];
        o[KC] = .5f * (t[u][0] + t[u][1] + t[u][2]);
        o[2 * KC] = .5f * (t[u][0] - t[u][1] + t[u][2]);
        o[3 * KC] = t[u][2];
      }
    }
  });
  return U;
}

// V [blocks, 16, C, block]: the transformed input patches of x [N, C, H, W] on tile grid g.
at::Tensor transformed_patches(const at::Tensor& x, const TileGrid& g) {
  auto V = at::empty({g.blocks, 16, x.size(1), g.block}, x.options());
  input_transform(x.data_ptr<float>(), x.size(1), g, V.data_ptr<float>());
  return V;
}

// y = conv3x3(x, w) from already transformed filters U [16, K, C].
at::Tensor winograd_forward(const at::Tensor& x, const at::Tensor& U) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), K = U.size(1);
  const TileGrid g(N, H, W);
  auto V = transformed_patches(x, g);
  auto M = at::empty({g.blocks, 16, K, g.block}, x.options());
  auto Ms = M.view({g.blocks * 16, K, g.block}), Vs = V.view({g.blocks * 16, C, g.block});
  at::parallel_for(0, g.blocks * 16, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t be = lo; be < hi; ++be) {
      auto out = Ms[be];
      at::mm_out(out, U[be % 16], Vs[be]);
    }
  });
  auto y = at::empty({N, K, H, W}, x.options());
  output_transform(M.data_ptr<float>(), K, g, y.data_ptr<float>());
  return y;
}

// dL/dw from x and dL/dy: dU[e] = sum over blocks of dM[b][e] V[b][e]^T, then dw = kron(G, G)^T dU per filter.
at::Tensor winograd_weight_gradient(const at::Tensor& x, const at::Tensor& gy) {
  const int64_t C = x.size(1), K = gy.size(1);
  const TileGrid g(x.size(0), x.size(2), x.size(3));
  // Why again and not saved by the forward: V is 4x the size of x for every layer, and one more pass over x is cheap
  // next to the products.
  auto V = transformed_patches(x, g);
  auto dM = at::empty({g.blocks, 16, K, g.block}, x.options());
  output_transform_adjoint(gy.data_ptr<float>(), K, g, dM.data_ptr<float>());
  auto dU = at::empty({16, K, C}, x.options());
  // One task per e, adding its blocks in order: the sum does not depend on the thread count.
  at::parallel_for(0, 16, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t e = lo; e < hi; ++e) {
      auto acc = dU[e];
      for (int64_t b = 0; b < g.blocks; ++b) {
        if (b == 0) at::mm_out(acc, dM[b][e], V[b][e].t());
        else acc.addmm_(dM[b][e], V[b][e].t());
      }
    }
  });
  return at::matmul(dU.reshape({16, K * C}).t(), filter_transform_matrix()).reshape({K, C, 3, 3});
}

struct WinogradConv3x3 : torch::autograd::Function<WinogradConv3x3> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x_in, const at::Tensor& w_in,
                            int64_t kernel) {
    auto x = x_in.contiguous(), w = w_in.contiguous();
    ctx->save_for_backward({x, w});
    ctx->saved_data["kernel"] = kernel;
    if (ConvAlgorithm(kernel) == ConvAlgorithm::WinogradF4x4) return onednn_winograd_forward(x, w);
    return winograd_forward(x, filter_transform(w));
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& w = saved[1];
    auto gy = grads[0].contiguous();
    const bool want_gx = ctx->needs_input_grad(0), want_gw = ctx->needs_input_grad(1);
    if (ConvAlgorithm(ctx->saved_data["kernel"].toInt()) == ConvAlgorithm::WinogradF4x4) {
      auto g = onednn_winograd_backward(x, w, gy, want_gx, want_gw);
      return {g.x, g.w, at::Tensor()};
    }
    at::Tensor gx, gw;
    // Padding 1 keeps the size, so dL/dx is the same convolution of dL/dy with the filters turned by 180 degrees
    // and input and output channels swapped.
    if (want_gx) gx = winograd_forward(gy, filter_transform(w.flip({2, 3}).transpose(0, 1)));
    if (want_gw) gw = winograd_weight_gradient(x, gy);
    return {gx, gw, at::Tensor()};
  }
};
}  // namespace

void set_conv_algorithm(ConvAlgorithm algorithm, WinogradFloors new_floors) {
  std::lock_guard<std::mutex> lock(floors_mutex);
  chosen_algorithm = int(algorithm);
  floors = new_floors;
}
ConvAlgorithm conv_algorithm() { return ConvAlgorithm(chosen_algorithm.load()); }

ConvAlgorithm winograd_kernel() {
  const auto chosen = conv_algorithm();
  if (chosen != ConvAlgorithm::Winograd) return chosen;
  return onednn_winograd_available() ? ConvAlgorithm::WinogradF4x4 : ConvAlgorithm::WinogradF2x2;
}

ConvAlgorithm parse_conv_algorithm(const std::string& name) {
  if (name == "direct") return ConvAlgorithm::Direct;
  if (name == "winograd") return ConvAlgorithm::Winograd;
  if (name == "winograd-f2x2") return ConvAlgorithm::WinogradF2x2;
  if (name == "winograd-f4x4") {
    if (!onednn_winograd_available())
      fail("--conv", "winograd-f4x4 is oneDNN's kernel for AVX-512 CPUs, which this CPU or build lacks (a build "
                     "needs libdnnl-dev); hint: --conv winograd-f2x2");
    return ConvAlgorithm::WinogradF4x4;
  }
  fail("--conv", "unknown convolution algorithm '" + name +
                     "' (expected direct, winograd, winograd-f2x2 or winograd-f4x4)");
}

namespace {
bool winograd_supports(const at::Tensor& x, const at::Tensor& w) {
  return x.device().is_cpu() && w.device().is_cpu() && x.scalar_type() == at::kFloat &&
         w.scalar_type() == at::kFloat && !at::autocast::is_cpu_enabled() && x.dim() == 4 && w.dim() == 4 &&
         w.size(2) == 3 && w.size(3) == 3 && x.size(1) == w.size(1) && x.numel() > 0 && w.numel() > 0;
}

bool kernel_applies(ConvAlgorithm kernel, const at::Tensor& x, const at::Tensor& w) {
  if (!winograd_supports(x, w)) return false;
  const WinogradFloors f = current_floors();
  const int64_t N = x.size(0), C = x.size(1), K = w.size(0), H = x.size(2), W = x.size(3);
  if (kernel == ConvAlgorithm::WinogradF2x2) return K >= f.f2x2_channels && C >= f.f2x2_channels;
  if (kernel != ConvAlgorithm::WinogradF4x4) return false;
  return K >= kF4MinChannels && C >= kF4MinChannels && H >= f.f4x4_size && W >= f.f4x4_size &&
         N * C * K * H * W >= f.f4x4_work && onednn_winograd_supports(N, C, K, H, W);
}
}  // namespace

bool winograd_applies(const at::Tensor& x, const at::Tensor& w) { return kernel_applies(winograd_kernel(), x, w); }

at::Tensor winograd_conv3x3(const at::Tensor& x, const at::Tensor& w, ConvAlgorithm kernel) {
  if (!winograd_supports(x, w))
    fail("", "winograd_conv3x3: needs CPU float32 x [N, C, H, W] and w [K, C, 3, 3] outside autocast");
  if (kernel == ConvAlgorithm::WinogradF4x4 &&
      !onednn_winograd_supports(x.size(0), x.size(1), w.size(0), x.size(2), x.size(3)))
    fail("", "winograd_conv3x3: oneDNN has no F(4x4, 3x3) kernel for this CPU or shape");
  if (kernel != ConvAlgorithm::WinogradF4x4) kernel = ConvAlgorithm::WinogradF2x2;
  return WinogradConv3x3::apply(x, w, int64_t(kernel));
}

at::Tensor conv3x3_same(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) {
  const auto kernel = winograd_kernel();
  if (kernel != ConvAlgorithm::Direct && kernel_applies(kernel, x, w)) {
    auto y = winograd_conv3x3(x, w, kernel);
    return bias.defined() ? y + bias.reshape({1, -1, 1, 1}) : y;
  }
  return at::conv2d(x, w, bias, /*stride=*/{1, 1}, /*padding=*/{1, 1});
}

}  // namespace pidistill
