// IDX: big-endian magic 0x00000803 (uint8, 3 dims: N, rows, cols) for images, 0x00000801 (N) for labels.
#include "pidistill/data/idx_reader.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "pidistill/io/zip_archive.h"
#include "pidistill/util/error.h"
#include "pidistill/util/files.h"

namespace pidistill {

namespace fs = std::filesystem;

namespace {

uint32_t be32(const std::string& bytes, size_t offset) {
  auto b = reinterpret_cast<const unsigned char*>(bytes.data()) + offset;
  return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | uint32_t(b[3]);
}

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

// Checks the magic number and the header, returns the dims (N, rows, cols for images; N for labels).
std::vector<int64_t> idx_dims(const std::string& bytes, const std::string& path, uint32_t magic, int ndim) {
  size_t header = 4 + 4 * size_t(ndim);
  if (bytes.size() < 4) fail(path, "truncated IDX header: " + std::to_string(bytes.size()) + " bytes");
  uint32_t got = be32(bytes, 0);
  if (got != magic)
    fail(path, "IDX magic number " + hex(got) + " at offset 0, expected " + hex(magic) +
                   (magic == 0x803 ? " (an idx3 images file)" : " (an idx1 labels file)"));
  if (bytes.size() < header)
    fail(path,
         "truncated IDX header: " + std::to_string(bytes.size()) + " bytes, need " + std::to_string(header));
  std::vector<int64_t> dims;
  for (int d = 0; d < ndim; ++d) dims.push_back(be32(bytes, 4 + 4 * size_t(d)));
  uint64_t count = 1;
  for (auto d : dims)
    if (__builtin_mul_overflow(count, uint64_t(d), &count) || count > (uint64_t(1) << 40))
      fail(path, "IDX header dimensions at offset 4 multiply to more than 2^40 bytes (damaged file)");
  if (bytes.size() - header < count)
    fail(path, "truncated: the header promises " + std::to_string(count) + " bytes of data from offset " +
                   std::to_string(header) + ", the file holds " + std::to_string(bytes.size() - header));
  return dims;
}

// The first existing of NAME and NAME.gz in dir, or "".
std::string find_with_gz(const fs::path& dir, const std::string& name) {
  for (const auto& candidate : {dir / name, dir / (name + ".gz")})
    if (fs::is_regular_file(candidate)) return candidate.string();
  return "";
}

// The bytes an IDX file's header says it holds (header + data), once `head` holds the whole header; 0 before.
uint64_t idx_size_from_header(const std::string& head) {
  if (head.size() < 4 || head[0] != 0 || head[1] != 0 || head[2] != 0x08) return 0;  // not IDX ubyte: unknown
  const int ndim = static_cast<unsigned char>(head[3]);
  const size_t header = 4 + 4 * size_t(ndim);
  if (head.size() < header) return 0;
  uint64_t count = 1;
  for (int d = 0; d < ndim; ++d)
    if (__builtin_mul_overflow(count, uint64_t(be32(head, 4 + 4 * size_t(d))), &count)) return UINT64_MAX;
  return count > UINT64_MAX - header ? UINT64_MAX : header + count;
}

}  // namespace

std::string read_maybe_gzip(const std::string& path, size_t first_bytes) {
  require_regular_file(
      path);  // a FIFO would block gzopen; a directory or a missing file gets its own message
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) fail(path, std::string("DATA: cannot open: ") + std::strerror(errno));
  // Why a cap: a few KB of gzip can claim gigabytes. Real IDX files inflate by 2-5:1 (MNIST, Fashion-MNIST);
  // past kMaxAcceptedInflateRatio only runs of equal bytes go, and 4 GiB is beyond any dataset we hold.
  const uint64_t on_disk = fs::file_size(path);
  const size_t max_bytes =
      size_t(std::min<uint64_t>(uint64_t(4) << 30, kMaxAcceptedInflateRatio * on_disk + (1 << 16)));
  std::string out;
  char buf[1 << 16];
  int n = 0;
  uint64_t claimed = 0;  // what the header says the file holds, once it has been read
  while (out.size() < first_bytes && (n = gzread(f, buf, sizeof buf)) > 0) {
    out.append(buf, size_t(n));
    if (out.size() > max_bytes) {
      gzclose(f);
      fail(path, "DATA: decompresses to more than " + std::to_string(max_bytes) + " bytes from " +
                     std::to_string(on_disk) +
                     " on disk (over " + std::to_string(kMaxAcceptedInflateRatio) +
                     ":1 or 4 GiB: a decompression bomb, not an IDX file of a dataset)");
    }
    // Why stop here: a gzip of a few KB can inflate to gigabytes; nothing past what the header describes is
    // used, so a stream that goes on is refused as soon as it passes that size.
    if (claimed == 0) claimed = idx_size_from_header(out);
    if (claimed != 0 && out.size() > claimed + (1 << 16)) {
      gzclose(f);
      fail(path, "DATA: decompresses to more than the " + std::to_string(claimed) +
                     " bytes its IDX header describes (damaged or hostile file)");
    }
  }
  int err = 0;
  std::string why = n < 0 ? gzerror(f, &err) : "";
  gzclose(f);
  if (n < 0) fail(path, "cannot decompress after " + std::to_string(out.size()) + " bytes: " + why);
  return out;
}

Dataset read_idx_dataset(const std::string& path, const std::string& split) {
  std::string images_path = path, labels_path;
  if (fs::is_directory(path)) {
    images_path = find_with_gz(path, split + "-images-idx3-ubyte");
    if (images_path.empty()) fail(path, "DATA: no " + split + "-images-idx3-ubyte[.gz] in this folder");
    labels_path = find_with_gz(path, split + "-labels-idx1-ubyte");
  } else {
    auto name = fs::path(path).filename().string();
    auto at = name.find("images-idx3");
    if (at != std::string::npos) {
      auto labels_name = name.substr(0, at) + "labels-idx1" + name.substr(at + 11);
      auto candidate = fs::path(path).parent_path() / labels_name;
      if (fs::is_regular_file(candidate)) labels_path = candidate.string();
    }
  }

  std::string bytes = read_maybe_gzip(images_path);
  auto dims = idx_dims(bytes, images_path, 0x00000803, 3);  // N, rows, cols
  int64_t n = dims[0], rows = dims[1], cols = dims[2];
  if (n == 0) fail(images_path, "the IDX file holds no images (count 0 at offset 4)");
  if (rows == 0 || cols == 0)
    fail(images_path, "the IDX images are " + std::to_string(rows) + "x" + std::to_string(cols) +
                          " (offsets 8 and 12): no pixels");
  auto images = at::empty({n, 1, rows, cols}, at::kByte);  // [N, 1, H, W]
  std::memcpy(images.data_ptr<uint8_t>(), bytes.data() + 16, size_t(n * rows * cols));

  at::Tensor labels;
  int64_t label_dim = 0;
  if (!labels_path.empty()) {
    std::string lbytes = read_maybe_gzip(labels_path);
    auto ldims = idx_dims(lbytes, labels_path, 0x00000801, 1);
    if (ldims[0] != n)
      fail(labels_path, "holds " + std::to_string(ldims[0]) + " labels (count at offset 4) but " +
                            images_path + " holds " + std::to_string(n) + " images");
    labels = at::empty({n}, at::kByte);
    std::memcpy(labels.data_ptr<uint8_t>(), lbytes.data() + 8, size_t(n));
    labels = labels.to(at::kLong);
    label_dim = labels.max().item<int64_t>() + 1;  // as EDM: max label + 1 (10 for the full sets)
  }
  return Dataset(images, labels, label_dim, images_path);
}

}  // namespace pidistill
