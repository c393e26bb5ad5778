// Seed lists as EDM's parse_int_list reads them, and latents drawn per image from that image's own seed.
#include "pidistill/util/seeds.h"

#include <ATen/ATen.h>

#include <cctype>

#include "pidistill/util/error.h"

namespace pidistill {

namespace {

constexpr int64_t kMaxSeeds = 100'000'000;  // guards against "0-999999999999" allocating the machine away

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// A non-negative decimal integer, or Error naming the whole list and the bad piece.
int64_t parse_seed(const std::string& piece, const std::string& text) {
  bool digits = !piece.empty() && piece.size() <= 18;
  for (char c : piece) digits = digits && std::isdigit(static_cast<unsigned char>(c));
  if (!digits)
    fail("seeds '" + text + "'", "'" + piece + "' is not a non-negative integer (hint: write e.g. 0-63 or 1,5,9-12)");
  return std::stoll(piece);
}

}  // namespace

std::vector<int64_t> parse_seeds(const std::string& text) {
  std::vector<int64_t> seeds;
  size_t pos = 0;
  while (true) {
    size_t comma = text.find(',', pos);
    std::string item = trim(text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    if (item.empty()) fail("seeds '" + text + "'", "empty item (hint: write e.g. 0-63 or 1,5,9-12)");
    size_t dash = item.find('-', 1);  // from 1: a leading '-' is a sign, rejected by parse_seed
    if (dash == std::string::npos) {
      seeds.push_back(parse_seed(item, text));
    } else {
      int64_t a = parse_seed(trim(item.substr(0, dash)), text);
      int64_t b = parse_seed(trim(item.substr(dash + 1)), text);
      if (b < a) fail("seeds '" + text + "'", "range '" + item + "' runs backwards (hint: write low-high)");
      if (b - a + 1 > kMaxSeeds - int64_t(seeds.size()))
        fail("seeds '" + text + "'", "more than " + std::to_string(kMaxSeeds) + " seeds");
      for (int64_t s = a; s <= b; ++s) seeds.push_back(s);
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return seeds;
}

at::Tensor latents_for_seeds(const std::vector<int64_t>& seeds, int channels, int resolution) {
  if (channels <= 0 || resolution <= 0)
    fail("latents_for_seeds", "channels and resolution must be positive, got " + std::to_string(channels) + " and " +
                                  std::to_string(resolution));
  std::vector<at::Tensor> latents;  // each: [C, H, W]
  latents.reserve(seeds.size());
  for (int64_t seed : seeds) {
    at::Generator gen = at::detail::createCPUGenerator(static_cast<uint64_t>(seed));
    latents.push_back(at::randn({channels, resolution, resolution}, gen, at::TensorOptions().dtype(at::kFloat)));
  }
  if (latents.empty()) return at::empty({0, channels, resolution, resolution}, at::kFloat);
  return at::stack(latents);  // [N, C, H, W]
}

}  // namespace pidistill
