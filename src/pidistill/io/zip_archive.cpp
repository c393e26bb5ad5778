// Zip reading per PKWARE's APPNOTE: EOCD (and zip64 EOCD) -> central directory -> local headers -> data.
#include "pidistill/io/zip_archive.h"

#include "pidistill/util/error.h"

#include <zlib.h>

#include <algorithm>
#include <limits>

namespace pidistill {

namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kZip64EocdSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint64_t kEocdSize = 22;
constexpr uint64_t kMaxDeflateRatio = 1032;  // deflate's best: 258 bytes from a 2-bit code
// Plus 4 KiB for tiny records: at kMaxAcceptedInflateRatio a file of 1 MB could inflate to ~128 MB, no more.
constexpr uint64_t kRatioSlack = 4096;

uint64_t le(const std::string& b, uint64_t pos, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[pos + i]);
  return v;
}

}  // namespace

ZipArchive::ZipArchive(std::string path, std::string bytes) : path_(std::move(path)), bytes_(std::move(bytes)) {
  const uint64_t n = bytes_.size();
  auto truncated = [&](const std::string& what) {
    fail(path_, "truncated zip: " + what + " (file of " + std::to_string(n) +
                    " bytes is cut short; re-copy or re-save the checkpoint)");
  };
  // The EOCD sits at the end, after an optional comment of up to 65535 bytes: scan backwards for its signature.
  if (n < kEocdSize) truncated("no end-of-central-directory record");
  uint64_t eocd = n;
  const uint64_t lowest = n >= kEocdSize + 65535 ? n - kEocdSize - 65535 : 0;
  for (uint64_t pos = n - kEocdSize + 1; pos-- > lowest;) {
    if (le(bytes_, pos, 4) == kEocdSig) {
      eocd = pos;
      break;
    }
  }
  if (eocd == n) truncated("no end-of-central-directory record");

  uint64_t count = le(bytes_, eocd + 10, 2);
  uint64_t cd_size = le(bytes_, eocd + 12, 4);
  uint64_t cd_offset = le(bytes_, eocd + 16, 4);
  // Why: counts or offsets that overflow 16/32 bits are saturated and the real values live in the zip64 record.
  if (count == 0xffff || cd_size == 0xffffffff || cd_offset == 0xffffffff) {
    if (eocd < 20 || le(bytes_, eocd - 20, 4) != kZip64LocatorSig) truncated("zip64 locator missing");
    uint64_t z64 = le(bytes_, eocd - 20 + 8, 8);
    if (n < 56 || z64 > n - 56 || le(bytes_, z64, 4) != kZip64EocdSig) truncated("zip64 end-of-central-directory record missing");
    count = le(bytes_, z64 + 32, 8);
    cd_size = le(bytes_, z64 + 40, 8);
    cd_offset = le(bytes_, z64 + 48, 8);
  }
  if (cd_offset > n || cd_size > n - cd_offset) truncated("central directory beyond the end of the file");

  uint64_t pos = cd_offset;
  const uint64_t cd_end = cd_offset + cd_size;
  for (uint64_t i = 0; i < count; ++i) {
    if (pos + 46 > cd_end || le(bytes_, pos, 4) != kCentralHeaderSig)
      truncated("central directory entry " + std::to_string(i) + " at byte " + std::to_string(pos) + " is damaged");
    ZipEntry e;
    e.method = static_cast<uint16_t>(le(bytes_, pos + 10, 2));
    e.crc32 = static_cast<uint32_t>(le(bytes_, pos + 16, 4));
    e.compressed_size = le(bytes_, pos + 20, 4);
    e.size = le(bytes_, pos + 24, 4);
    const uint64_t name_len = le(bytes_, pos + 28, 2), extra_len = le(bytes_, pos + 30, 2),
                   comment_len = le(bytes_, pos + 32, 2);
    e.local_header = le(bytes_, pos + 42, 4);
    if (pos + 46 + name_len + extra_len + comment_len > cd_end)
      truncated("central directory entry " + std::to_string(i) + " runs past the directory");
    e.name = bytes_.substr(pos + 46, name_len);
    // zip64 extended information: only the saturated fields are present, in this order.
    for (uint64_t x = pos + 46 + name_len, x_end = x + extra_len; x + 4 <= x_end;) {
      const uint64_t id = le(bytes_, x, 2), len = le(bytes_, x + 2, 2);
      if (x + 4 + len > x_end) break;
      if (id == 0x0001) {
        uint64_t f = x + 4, f_end = f + len;
        for (uint64_t* field : {&e.size, &e.compressed_size, &e.local_header}) {
          if (*field != 0xffffffff) continue;
          if (f + 8 > f_end) truncated("entry '" + e.name + "': zip64 extra field too short");
          *field = le(bytes_, f, 8);
          f += 8;
        }
      }
      x += 4 + len;
    }
    entries_.push_back(std::move(e));
    pos += 46 + name_len + extra_len + comment_len;
  }
}

const ZipEntry* ZipArchive::find(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

std::string ZipArchive::read(const ZipEntry& e) const {
  const uint64_t n = bytes_.size();
  const std::string where = path_ + ": entry '" + e.name + "'";
  if (e.local_header > n || n - e.local_header < 30 || le(bytes_, e.local_header, 4) != kLocalHeaderSig)
    fail(where, "local header at byte " + std::to_string(e.local_header) + " is missing (truncated or damaged zip)");
  // The local header's own name/extra lengths can differ from the central ones (torch pads data to 64 bytes here).
  const uint64_t start = e.local_header + 30 + le(bytes_, e.local_header + 26, 2) + le(bytes_, e.local_header + 28, 2);
  if (start > n || e.compressed_size > n - start)
    fail(where, "data at bytes " + std::to_string(start) + ".." + std::to_string(start + e.compressed_size) +
                    " go beyond the file size " + std::to_string(n) + " (truncated zip)");
  std::string out;
  if (e.method == 0) {
    if (e.compressed_size != e.size) fail(where, "stored entry with differing sizes (damaged zip)");
    out = bytes_.substr(start, e.compressed_size);
  } else if (e.method == 8) {
    // Why: the directory's size is a claim; deflate cannot expand more than 1032:1, so a larger claim is
    // refused before any allocation, as is one past what real data reach (kMaxAcceptedInflateRatio); the output
    // grows only as far as the data really inflates.
    if (e.size / kMaxDeflateRatio > e.compressed_size + 1)
      fail(where, "claims " + std::to_string(e.size) + " bytes uncompressed from " +
                      std::to_string(e.compressed_size) + " compressed bytes, more than deflate can expand (" +
                      std::to_string(kMaxDeflateRatio) + ":1; damaged or hostile zip)");
    if (e.size > kMaxAcceptedInflateRatio * e.compressed_size + kRatioSlack)
      fail(where, "claims " + std::to_string(e.size) + " bytes uncompressed from " +
                      std::to_string(e.compressed_size) + " compressed bytes, more than " +
                      std::to_string(kMaxAcceptedInflateRatio) +
                      ":1 (a decompression bomb, or degenerate data: save it uncompressed)");
    z_stream zs{};
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) fail(where, "zlib inflateInit2 failed");
    // Why the loop: avail_in/avail_out are 32-bit, entries may be larger.
    uint64_t in_left = e.compressed_size, produced = 0;
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes_.data() + start));
    int rc = Z_OK;
    while (rc == Z_OK) {
      if (produced == out.size() && out.size() < e.size)
        out.resize(std::min<uint64_t>(e.size, std::max<uint64_t>(2 * out.size(), uint64_t(1) << 20)));
      const uInt chunk_in = static_cast<uInt>(std::min<uint64_t>(in_left, std::numeric_limits<uInt>::max()));
      const uInt chunk_out =
          static_cast<uInt>(std::min<uint64_t>(out.size() - produced, std::numeric_limits<uInt>::max()));
      zs.avail_in = chunk_in;
      zs.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
      zs.avail_out = chunk_out;
      rc = inflate(&zs, Z_NO_FLUSH);
      in_left -= chunk_in - zs.avail_in;
      produced += chunk_out - zs.avail_out;
      if (rc == Z_OK && chunk_in == zs.avail_in && chunk_out == zs.avail_out) rc = Z_BUF_ERROR;  // no progress
    }
    inflateEnd(&zs);
    if (rc != Z_STREAM_END || produced != e.size)
      fail(where, "deflate data is corrupt or truncated (inflated " + std::to_string(produced) +
                      " bytes, the directory says " + std::to_string(e.size) + ")");
  } else {
    fail(where, "unsupported compression method " + std::to_string(e.method) + " (only stored and deflate)");
  }
  // crc32 takes uInt lengths: feed large entries in pieces.
  uLong crc = crc32(0L, Z_NULL, 0);
  for (uint64_t off = 0; off < out.size();) {
    const uInt len = static_cast<uInt>(std::min<uint64_t>(out.size() - off, 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(out.data() + off), len);
    off += len;
  }
  if (static_cast<uint32_t>(crc) != e.crc32) fail(where, "CRC mismatch (damaged file; re-copy or re-save it)");
  return out;
}

}  // namespace pidistill
