// The legacy (non-zip) torch.save format of torch < 1.6: a whole file, or a storage inside an EDM pickle.
#pragma once
#include "pidistill/io/pickle_value.h"

#include <string>

namespace pidistill {

// True when the bytes start with the legacy format's magic-number pickle.
bool is_legacy_torch_save(const std::string& bytes);

// Parses a legacy torch.save: magic-number pickle, protocol version, sys info, the object pickle (storages as
// persistent ids), the pickled list of storage keys, then per key an 8-byte little-endian item count and the
// raw data. Returns the saved object with every tensor materialized. Errors name `path` and `label` (which
// bytes: "legacy torch.save", "storage at data.pkl byte N") with the byte offset. `nested`: the bytes are
// one storage inside a pickle (torch.storage._load_from_bytes): the object must be that storage, and storages
// inside it are refused.
PyValue* read_legacy_torch_save(PyArena& arena, const std::string& path, const std::string& bytes,
                                const std::string& label, bool nested);

}  // namespace pidistill
