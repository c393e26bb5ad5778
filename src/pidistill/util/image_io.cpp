// PNG/JPEG in and out through stb (the one translation unit holding its implementation), EDM's uint8 mapping.
#include "pidistill/util/image_io.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "pidistill/util/error.h"
#include "pidistill/util/files.h"

// Why static: another library (or Debian's libstb) may carry its own stb copy; static keeps the symbols ours.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb_image.h>
#include <stb_image_write.h>
#pragma GCC diagnostic pop

namespace pidistill {

namespace {

void append_to_string(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), size_t(size));
}

}  // namespace

at::Tensor to_uint8(const at::Tensor& images) {
  if (images.dim() != 4 || (images.size(1) != 1 && images.size(1) != 3)) {
    std::ostringstream shape;
    shape << images.sizes();
    fail("to_uint8", "expected images [B, C, H, W] with C = 1 or 3, got shape " + shape.str());
  }
  // Exactly EDM's generate.py: the +128 (not 127.5) with truncation rounds to nearest.
  auto x = images.detach().to(at::kCPU);  // [B, C, H, W]
  if (!at::isFloatingType(x.scalar_type())) x = x.to(at::kFloat);
  return (x * 127.5 + 128).clamp(0, 255).to(at::kByte).permute({0, 2, 3, 1}).contiguous();  // [B, H, W, C]
}

void write_png(const std::string& path, const at::Tensor& image_hwc_uint8) {
  const auto& img = image_hwc_uint8;
  if (img.scalar_type() != at::kByte || img.dim() != 3 || img.size(2) < 1 || img.size(2) > 4)
    fail(path, "write_png expects a uint8 image [H, W, C] with C in 1..4 (hint: use to_uint8 first)");
  auto data = img.to(at::kCPU).contiguous();  // [H, W, C]
  int h = int(data.size(0)), w = int(data.size(1)), c = int(data.size(2));
  std::string bytes;
  if (!stbi_write_png_to_func(append_to_string, &bytes, w, h, c, data.data_ptr<uint8_t>(), w * c))
    fail(path, "PNG encoding failed");
  write_file_atomic(path, bytes);  // PATH.tmp then rename: no half-written PNG
}

void write_png_grid(const std::string& path, const at::Tensor& images, int cols) {
  auto u8 = to_uint8(images);  // [B, H, W, C]
  int64_t n = u8.size(0), h = u8.size(1), w = u8.size(2), c = u8.size(3);
  if (n == 0) fail(path, "write_png_grid got an empty batch");
  int64_t gw = cols > 0 ? cols : int64_t(std::ceil(std::sqrt(double(n))));
  int64_t gh = (n + gw - 1) / gw;
  // Empty cells at the end stay black.
  auto padded = at::zeros({gh * gw, h, w, c}, u8.options());
  padded.narrow(0, 0, n).copy_(u8);
  auto grid = padded.view({gh, gw, h, w, c}).permute({0, 2, 1, 3, 4}).reshape({gh * h, gw * w, c});  // [gh*H, gw*W, C]
  write_png(path, grid);
}

namespace {

constexpr int64_t kMaxPixels = int64_t(1) << 24;  // 4096 x 4096: far above any training image
constexpr int64_t kMaxPixelsPerByte = 1024;       // see decode_image

// Why: stb_image 2.27 (Debian 12's) builds a JPEG Huffman table from 16 code counts without checking that they
// sum to at most 256, and then writes past the table (found by fuzz_image under AddressSanitizer; fixed in
// stb 2.28). The segments are walked as a decoder does (markers, their lengths, entropy-coded data up to the
// next marker) and any DHT table of more than 256 codes is refused before stb sees the file.
void check_jpeg_huffman_tables(const std::string& b, const std::string& name) {
  const size_t n = b.size();
  auto u8 = [&](size_t i) { return static_cast<unsigned char>(b[i]); };
  size_t pos = 2;  // after SOI
  while (pos + 1 < n) {
    if (u8(pos) != 0xFF) {
      ++pos;  // entropy-coded data (or garbage): scan on to the next marker
      continue;
    }
    const unsigned char m = u8(pos + 1);
    if (m == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (m == 0x00 || (m >= 0xD0 && m <= 0xD9) || m == 0x01) {  // stuffed byte, RSTn, SOI, EOI, TEM
      pos += 2;
      continue;
    }
    if (pos + 3 >= n) return;
    const size_t len = (size_t(u8(pos + 2)) << 8) | u8(pos + 3);  // includes its own two bytes
    if (m == 0xC4) {
      // As stb reads it: tables while the segment length lasts, bytes past the end of the file read as 0 (the
      // second fuzz finding was a table cut off by the end of the file).
      auto at_or_0 = [&](size_t i) { return i < n ? u8(i) : 0u; };
      long remaining = long(len) - 2;
      for (size_t t = pos + 4; remaining > 0;) {
        const unsigned q = at_or_0(t);
        if ((q >> 4) > 1 || (q & 15) > 3) break;  // stb refuses the table itself
        size_t codes = 0;
        for (size_t i = 1; i <= 16; ++i) codes += at_or_0(t + i);
        if (codes > 256)
          fail(name, "JPEG Huffman table at byte " + std::to_string(t) + " declares " + std::to_string(codes) +
                         " codes, more than 256 (damaged or hostile file)");
        t += 17 + codes;
        remaining -= long(17 + codes);
      }
    }
    pos += 2 + len;
  }
}

// Why: stb_image allocates a PNG chunk's claimed length before it reads the chunk (found by fuzz_image: a
// 75-byte PNG claiming a 1.6 GB IDAT chunk). Every chunk must fit in the file.
void check_png_chunks(const std::string& b, const std::string& name) {
  auto be32 = [&](size_t i) {
    return (uint64_t(uint8_t(b[i])) << 24) | (uint64_t(uint8_t(b[i + 1])) << 16) |
           (uint64_t(uint8_t(b[i + 2])) << 8) | uint64_t(uint8_t(b[i + 3]));
  };
  for (size_t pos = 8; pos + 8 <= b.size();) {
    const uint64_t len = be32(pos);
    if (len > b.size() - pos - 8)
      fail(name, "PNG chunk '" + printable(b.substr(pos + 4, 4)) + "' at byte " + std::to_string(pos) +
                     " claims " + std::to_string(len) + " bytes, beyond the end of the " +
                     std::to_string(b.size()) + "-byte file (truncated or hostile)");
    if (b.compare(pos + 4, 4, "IEND") == 0) return;
    pos += 12 + len;  // length, type, data, CRC
  }
}

}  // namespace

at::Tensor decode_image(const std::string& bytes, const std::string& name) {
  auto buf = reinterpret_cast<const stbi_uc*>(bytes.data());
  // Only the two formats we promise: stb would also decode GIF, BMP, PSD, TGA, HDR, PIC and PNM.
  const bool png = bytes.compare(0, 8, "\x89PNG\r\n\x1a\n", 8) == 0;
  const bool jpeg = bytes.size() >= 3 && bytes.compare(0, 3, "\xff\xd8\xff", 3) == 0;
  if (!png && !jpeg) fail(name, "not a PNG or JPEG image (its first bytes are neither signature)");
  if (bytes.size() > size_t(1) << 30) fail(name, "image file larger than 1 GiB");
  if (jpeg) check_jpeg_huffman_tables(bytes, name);
  if (png) check_png_chunks(bytes, name);
  int len = int(bytes.size()), w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(buf, len, &w, &h, &comp))
    fail(name, std::string("not a readable PNG/JPEG image (") + stbi_failure_reason() + ")");
  if (int64_t(w) * h > kMaxPixels)
    fail(name, "image of " + std::to_string(w) + "x" + std::to_string(h) + " pixels, more than " +
                   std::to_string(kMaxPixels) + " (damaged or hostile file?)");
  // Why: stb decodes every pixel a header claims, from however few bytes; a 559-byte JPEG claiming 248x65524
  // took 3.5 s (found by fuzz_image). A baseline JPEG spends at least 2 bits per 8x8 block and a PNG is
  // deflate (at most 1032:1), so a real image never claims more than about 1024 pixels per byte.
  if (int64_t(w) * h > kMaxPixelsPerByte * int64_t(bytes.size()) + (int64_t(1) << 16))
    fail(name, "image of " + std::to_string(w) + "x" + std::to_string(h) + " pixels from only " +
                   std::to_string(bytes.size()) + " bytes, more than " + std::to_string(kMaxPixelsPerByte) +
                   " pixels per byte (damaged or hostile file?)");
  // Alpha is dropped: the networks see gray (1) or RGB (3) channels.
  int want = comp == 2 ? 1 : comp == 4 ? 3 : comp;
  stbi_uc* pixels = stbi_load_from_memory(buf, len, &w, &h, &comp, want);
  if (!pixels) fail(name, std::string("cannot decode the image (") + stbi_failure_reason() + ")");
  auto out = at::empty({h, w, want}, at::kByte);  // [H, W, C]
  std::memcpy(out.data_ptr<uint8_t>(), pixels, size_t(h) * w * want);
  stbi_image_free(pixels);
  return out;
}

at::Tensor read_image(const std::string& path) { return decode_image(read_file(path), path); }

}  // namespace pidistill
