#include "pidistill/pid/student.h"

#include "pidistill/pid/mlp.h"
#include "pidistill/util/error.h"

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <cmath>
#include <sstream>

namespace pidistill {

double StudentConstants::c_in() const { return 1 / std::sqrt(sigma_data * sigma_data + T * T); }

Student::Student(std::shared_ptr<UNet> F_, StudentConstants constants_)
    : F(std::move(F_)), constants(constants_) {
  if (!F) fail("student", "no network F given");
  if (!(constants.sigma_min > 0 && constants.sigma_min < constants.T))
    fail("student", "need 0 < sigma_min < T");
}

static at::ScalarType param_dtype(const UNet& net) {
  auto params = net.parameters();
  return params.empty() ? at::kFloat : params.front().scalar_type();
}

StudentOutput Student::evaluate(const at::Tensor& z_in, const at::Tensor& t_in,
                                const at::Tensor& class_labels) const {
  const auto dtype = param_dtype(*F);
  auto z = z_in.to(dtype);
  const int64_t B = z.size(0);
  auto t = t_in.to(z.device(), dtype).reshape({-1});  // t: [B] or [1]
  if (t.numel() != 1 && t.numel() != B)
    fail("student", "t has " + std::to_string(t.numel()) + " values for a batch of " + std::to_string(B));
  {
    // Why a tolerance: the float32 grid gives 0.0019999996 for sigma_min and 79.99998 for T.
    const double lo = t.min().item<double>(), hi = t.max().item<double>();
    const double slack = 1e-6;
    if (!(lo >= constants.sigma_min * (1 - slack) && hi <= constants.T * (1 + slack))) {
      std::ostringstream msg;
      msg << "t must lie in [sigma_min, T] = [" << constants.sigma_min << ", " << constants.T << "] (got "
          << lo << " .. " << hi << ")";
      fail("student", msg.str());
    }
  }
  if (t.numel() == 1) t = t.expand({B});
  std::vector<int64_t> bshape(z.dim(), 1);
  bshape[0] = B;
  auto t_b = t.reshape(bshape);  // t_b: [B, 1, 1, 1]

  StudentOutput out;
  out.noise = z * constants.T;                  // noise: [B, C, H, W]
  out.model_in = out.noise * constants.c_in();  // the float32 path multiplies by c_in rounded to float32
  out.c_noise = at::log(t) * 0.25;              // c_noise: [B]
  at::Tensor labels = class_labels.defined() ? class_labels.to(z.device(), dtype) : class_labels;
  out.F = F->forward(out.model_in, out.c_noise, labels);
  // Evaluation order of the official code, for float32 closeness: w = t/T, a = w noise, b = (1-w) F.
  auto w = t_b / constants.T;
  auto a = w * out.noise;
  auto b = (1 - w) * out.F;
  out.x_theta = a + b;
  return out;
}

std::shared_ptr<UNet> clone_net(const UNet& net) {
  std::shared_ptr<UNet> copy;
  if (auto mlp = dynamic_cast<const Mlp*>(&net))
    copy = std::make_shared<Mlp>(mlp->mlp_config);
  else
    copy = make_unet(net.config);
  copy->to(param_dtype(net));
  copy_weights(*copy, net);
  copy->train(net.is_training());
  return copy;
}

void copy_weights(UNet& dst, const UNet& src) {
  torch::NoGradGuard no_grad;
  auto copy_all = [&](auto dst_items, auto src_items, const char* what) {
    if (dst_items.size() != src_items.size())
      fail("student", std::string("networks differ in their number of ") + what);
    for (const auto& item : src_items) {
      auto* target = dst_items.find(item.key());
      if (!target || target->sizes() != item.value().sizes())
        fail("student", std::string("networks differ at ") + what + " '" + item.key() + "'");
      target->copy_(item.value());
    }
  };
  copy_all(dst.named_parameters(), src.named_parameters(), "parameter");
  copy_all(dst.named_buffers(), src.named_buffers(), "buffer");
}

}  // namespace pidistill
