#include "pidistill/util/sha256.h"

#include "pidistill/util/error.h"
#include "pidistill/util/files.h"

#include <openssl/evp.h>

#include <fstream>
#include <vector>

namespace pidistill {

namespace {

std::string hex_digest(EVP_MD_CTX* ctx) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, digest, &len);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ && EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr) == 1) return;
  EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));  // a throwing constructor runs no destructor
  fail("sha256", "OpenSSL init failed");
}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256::update(const void* data, size_t size) {
  if (size) EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, size);
}

std::string Sha256::hex() { return hex_digest(static_cast<EVP_MD_CTX*>(ctx_)); }

std::string sha256_file(const std::string& path) {
  require_regular_file(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open to compute its sha256");
  Sha256 sha;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    if (in.gcount() > 0) sha.update(buf.data(), size_t(in.gcount()));
  }
  if (in.bad()) fail(path, "read error while computing its sha256");
  return sha.hex();
}

std::string sha256_bytes(std::initializer_list<std::pair<const void*, size_t>> pieces) {
  Sha256 sha;
  for (const auto& [data, size] : pieces) sha.update(data, size);
  return sha.hex();
}

}  // namespace pidistill
