// Stored-only zip writing per PKWARE's APPNOTE: local header + data per entry, central directory, EOCD.
#include "pidistill/io/zip_writer.h"

#include "pidistill/util/error.h"

#include <zlib.h>

#include <algorithm>
#include <limits>

namespace pidistill {

namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint16_t kVersion = 20;  // 2.0: the lowest version that readers expect of stored entries
// Why a fixed date (1980-01-01 00:00, DOS format): the same arrays give the same bytes, run after run.
constexpr uint16_t kDosTime = 0, kDosDate = (1 << 5) | 1;
constexpr uint64_t kMax32 = std::numeric_limits<uint32_t>::max();

void put(std::string& out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t crc_of(const std::string& data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  // crc32 takes uInt lengths: feed large buffers in pieces.
  for (uint64_t off = 0; off < data.size();) {
    const uInt len = static_cast<uInt>(std::min<uint64_t>(data.size() - off, 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data() + off), len);
    off += len;
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace

void ZipWriter::add(const std::string& name, const std::string& data, uint32_t align) {
  for (const auto& e : entries_)
    if (e.name == name) fail(path_, "zip entry '" + name + "' written twice; give every array its own name");
  if (name.empty() || name.size() > 0xffff)
    fail(path_, "zip entry name of " + std::to_string(name.size()) + " bytes (must be 1..65535)");
  // Why fail rather than zip64: feature statistics are tens of MB; a 4 GiB array is a mistake worth
  // reporting.
  if (data.size() >= kMax32 || body_.size() + 30 + name.size() + align + 4 + data.size() >= kMax32 ||
      entries_.size() >= 0xffff)
    fail(path_,
         "zip entry '" + name + "' of " + std::to_string(data.size()) +
             " bytes goes past 4 GiB or 65535 entries (this writer has no zip64); store smaller arrays");
  // Why an extra field of at least 4 bytes: its own 2-byte id and 2-byte length come first.
  uint64_t pad = 0;
  if (align > 1) {
    const uint64_t unpadded = body_.size() + 30 + name.size();
    pad = (align - unpadded % align) % align;
    if (pad > 0 && pad < 4) pad += align;
  }
  Entry e{name, crc_of(data), static_cast<uint32_t>(data.size()), static_cast<uint32_t>(body_.size())};
  put(body_, kLocalHeaderSig, 4);
  put(body_, kVersion, 2);
  put(body_, 0, 2);  // flags: no data descriptor, the sizes are known up front
  put(body_, 0, 2);  // method: stored
  put(body_, kDosTime, 2);
  put(body_, kDosDate, 2);
  put(body_, e.crc32, 4);
  put(body_, e.size, 4);  // compressed size
  put(body_, e.size, 4);  // uncompressed size
  put(body_, name.size(), 2);
  put(body_, pad, 2);  // extra field length
  body_ += name;
  if (pad > 0) {
    put(body_, 0x4246, 2);  // "FB", the id torch.save's writer uses for its padding
    put(body_, pad - 4, 2);
    body_.append(pad - 4, 'Z');
  }
  body_ += data;
  entries_.push_back(std::move(e));
}

std::string ZipWriter::finish() const {
  std::string cd;
  for (const auto& e : entries_) {
    put(cd, kCentralHeaderSig, 4);
    put(cd, kVersion, 2);  // made by (MS-DOS attribute compatibility)
    put(cd, kVersion, 2);  // needed to extract
    put(cd, 0, 2);         // flags
    put(cd, 0, 2);         // method: stored
    put(cd, kDosTime, 2);
    put(cd, kDosDate, 2);
    put(cd, e.crc32, 4);
    put(cd, e.size, 4);
    put(cd, e.size, 4);
    put(cd, e.name.size(), 2);
    put(cd, 0, 2);  // extra field length
    put(cd, 0, 2);  // comment length
    put(cd, 0, 2);  // disk number start
    put(cd, 0, 2);  // internal attributes
    put(cd, 0, 4);  // external attributes
    put(cd, e.local_header, 4);
    cd += e.name;
  }
  if (body_.size() + cd.size() >= kMax32)
    fail(path_, "zip central directory goes past 4 GiB (this writer has no zip64); store smaller arrays");
  std::string out = body_ + cd;
  put(out, kEocdSig, 4);
  put(out, 0, 2);  // this disk
  put(out, 0, 2);  // disk with the central directory
  put(out, entries_.size(), 2);
  put(out, entries_.size(), 2);
  put(out, cd.size(), 4);
  put(out, body_.size(), 4);  // central directory offset
  put(out, 0, 2);             // comment length
  return out;
}

}  // namespace pidistill
