// libFuzzer target for job segments as read back from the database (storage/segment_codec.h,
// doc/storage.md): arbitrary bytes are walked as a segment blob and every record is decoded.
// Nothing may crash or read past the blob. A record reported intact (checksum matches) and one
// that decodes are the same thing; a damaged one never decodes. A record that decodes survives
// re-encoding (the same fields back, whatever varint spelling the input used). The same bytes
// are also run through the v3 -> v4 conversion, whose output must walk as intact records only.
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

void WalkSegment(std::string_view blob, bool all_intact) {
  segment::Reader reader(blob);
  size_t consumed = 0;
  while (!reader.done()) {
    auto entry = reader.Next();
    if (!entry.ok()) {
      Require(!all_intact, "converted segment does not walk");
      Require(reader.offset() == consumed, "reader moved on an error");
      break;
    }
    const std::string_view bytes = entry.value().bytes;
    Require(bytes.size() > segment::kChecksumBytes, "record too short");
    Require(bytes.data() == blob.data() + consumed, "records not contiguous");
    consumed += bytes.size();
    Require(consumed <= blob.size(), "record past the end of the blob");
    Require(reader.offset() == consumed, "offset disagrees with the records");
    (void)segment::DescribeDamaged(bytes);
    JobRecord rec;
    const bool decoded = segment::DecodeRecord(bytes, &rec).ok();
    if (!entry.value().intact) {
      Require(!all_intact, "converted record damaged");
      Require(!decoded, "a damaged record decoded");
      continue;
    }
    if (!decoded) {
      Require(!all_intact, "converted record does not decode");
      continue;
    }
    Require(rec.id == entry.value().id, "reader and decoder disagree on the id");
    std::string again;
    segment::AppendRecord(rec, &again);
    JobRecord back;
    Require(segment::DecodeRecord(again, &back).ok(), "re-encoded record does not decode");
    Require(Same(rec, back), "re-encoded record differs");
  }
}

}  // namespace
}  // namespace roundhouse::storage

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace roundhouse::storage;
  const std::string_view blob(reinterpret_cast<const char*>(data), size);
  WalkSegment(blob, /*all_intact=*/false);
  std::string converted;
  if (segment::ConvertLegacySegment(blob, &converted).ok()) WalkSegment(converted, true);
  return 0;
}
