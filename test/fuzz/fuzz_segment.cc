// libFuzzer target for job segments as read back from the database (storage/segment_codec.h):
// arbitrary bytes are walked as a segment blob and every record is decoded. Nothing may crash or
// read past the blob; a record that decodes must survive re-encoding unchanged (the same fields
// back, whatever varint spelling the input used).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "storage/segment_codec.h"

namespace roundhouse::storage {
namespace {

void Require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_segment invariant failed: %s\n", what);
    std::abort();
  }
}

bool Same(const JobRecord& a, const JobRecord& b) {
  return a.id == b.id && a.handle == b.handle && a.function == b.function && a.unique == b.unique &&
         a.reducer == b.reducer && a.data == b.data && a.priority == b.priority && a.when == b.when;
}

}  // namespace
}  // namespace roundhouse::storage

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace roundhouse::storage;
  const std::string_view blob(reinterpret_cast<const char*>(data), size);
  segment::Reader reader(blob);
  size_t consumed = 0;
  while (!reader.done()) {
    auto entry = reader.Next();
    if (!entry.ok()) break;
    const std::string_view bytes = entry.value().bytes;
    Require(!bytes.empty(), "empty record");
    Require(bytes.data() == blob.data() + consumed, "records not contiguous");
    consumed += bytes.size();
    Require(consumed <= blob.size(), "record past the end of the blob");
    JobRecord rec;
    if (!segment::DecodeRecord(bytes, &rec).ok()) continue;
    Require(rec.id == entry.value().id, "reader and decoder disagree on the id");
    std::string again;
    segment::AppendRecord(rec, &again);
    JobRecord back;
    Require(segment::DecodeRecord(again, &back).ok(), "re-encoded record does not decode");
    Require(Same(rec, back), "re-encoded record differs");
  }
  return 0;
}
