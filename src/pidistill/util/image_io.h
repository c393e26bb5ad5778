// Images out: float images in [-1, 1] to uint8 PNG files and grids, as EDM writes them.
// Stable API (see pidistill/pidistill.h): to_uint8, write_png, write_png_grid, read_image, decode_image.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

namespace pidistill {

// images: [B, C, H, W] in [-1, 1], C = 1 or 3. Rounds (x*127.5 + 128) clamped to [0, 255] as EDM does.
at::Tensor to_uint8(const at::Tensor& images);  // [B, H, W, C] uint8
void write_png(const std::string& path, const at::Tensor& image_hwc_uint8);
// Tiles the batch row-major into a grid of `cols` columns (0 = near-square); writes one PNG atomically.
void write_png_grid(const std::string& path, const at::Tensor& images, int cols = 0);

// Reads a PNG or JPEG into [H, W, C] uint8; Error naming the file when unreadable.
at::Tensor read_image(const std::string& path);
// The same from bytes already in memory (e.g. a zip entry); `name` is used in error messages only.
at::Tensor decode_image(const std::string& bytes, const std::string& name);

}  // namespace pidistill
