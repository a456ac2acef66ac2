#include "storage/segment_codec.h"

#include <optional>

#include "storage/crc32c.h"

namespace roundhouse::storage::segment {
namespace {

constexpr size_t kMaxVarintBytes = 10;

void AppendVarint(uint64_t v, std::string* out) {
  char buf[kMaxVarintBytes];
  size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out->append(buf, n);
}

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

// Reads one varint at `*pos` of `in`; nullopt when truncated or longer than 10 bytes.
std::optional<uint64_t> ReadVarint(std::string_view in, size_t* pos) {
  uint64_t v = 0;
  for (size_t i = 0; i < kMaxVarintBytes && *pos < in.size(); ++i) {
    const auto byte = static_cast<uint8_t>(in[(*pos)++]);
    v |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
    if ((byte & 0x80) == 0) return v;
  }
  return std::nullopt;
}

bool ReadString(std::string_view in, size_t* pos, std::string* out) {
  const auto len = ReadVarint(in, pos);
  if (!len || *len > in.size() - *pos) return false;
  out->assign(in.data() + *pos, *len);
  *pos += *len;
  return true;
}

size_t StringSize(const std::string& s) { return VarintSize(s.size()) + s.size(); }

void AppendU32(uint32_t v, std::string* out) {
  const char b[4] = {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 24)};
  out->append(b, 4);
}

uint32_t ReadU32(std::string_view in) {
  return static_cast<uint32_t>(static_cast<uint8_t>(in[0])) |
         static_cast<uint32_t>(static_cast<uint8_t>(in[1])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(in[2])) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(in[3])) << 24;
}

// Appends varint(length) body, without checksum (the v3 record).
void AppendUnchecked(const JobRecord& rec, std::string* out, size_t extra) {
  const uint64_t when = ZigZag(rec.when);
  const size_t body = VarintSize(rec.id) + 1 + VarintSize(when) + StringSize(rec.handle) +
                      StringSize(rec.function) + StringSize(rec.unique) + StringSize(rec.reducer) +
                      StringSize(rec.data);
  out->reserve(out->size() + VarintSize(body) + body + extra);
  AppendVarint(body, out);
  AppendVarint(rec.id, out);
  out->push_back(static_cast<char>(rec.priority));
  AppendVarint(when, out);
  for (const std::string* s : {&rec.handle, &rec.function, &rec.unique, &rec.reducer, &rec.data}) {
    AppendVarint(s->size(), out);
    out->append(*s);
  }
}

// The record at `pos` of `blob` if its length fits: its total size (checksum included) and
// whether the checksum matches.
struct Span {
  size_t size = 0;
  bool intact = false;
};
std::optional<Span> SpanAt(std::string_view blob, size_t pos) {
  size_t p = pos;
  const auto body = ReadVarint(blob, &p);
  if (!body || *body == 0 || *body > blob.size() - p || blob.size() - p - *body < kChecksumBytes) {
    return std::nullopt;
  }
  const size_t covered = p - pos + *body;
  const uint32_t stored = ReadU32(blob.substr(pos + covered, kChecksumBytes));
  return Span{covered + kChecksumBytes, Crc32c(blob.substr(pos, covered)) == stored};
}

// Decodes varint(length) body (no checksum) filling `rec`.
Status DecodeUnchecked(std::string_view bytes, JobRecord* rec) {
  size_t pos = 0;
  const auto body = ReadVarint(bytes, &pos);
  if (!body || *body != bytes.size() - pos) return Status::Error("record length mismatch");
  const auto id = ReadVarint(bytes, &pos);
  if (!id || pos >= bytes.size()) return Status::Error("truncated record header");
  const auto priority = static_cast<uint8_t>(bytes[pos++]);
  const auto when = ReadVarint(bytes, &pos);
  if (!when || priority > 2) return Status::Error("invalid priority or due time");
  rec->id = *id;
  rec->priority = priority;
  rec->when = UnZigZag(*when);
  for (std::string* s : {&rec->handle, &rec->function, &rec->unique, &rec->reducer, &rec->data}) {
    if (!ReadString(bytes, &pos, s)) return Status::Error("truncated record field");
  }
  if (pos != bytes.size()) return Status::Error("trailing bytes in record");
  return Status::Ok();
}

}  // namespace

void AppendRecord(const JobRecord& rec, std::string* out) {
  const size_t start = out->size();
  AppendUnchecked(rec, out, kChecksumBytes);
  AppendU32(Crc32c(std::string_view(*out).substr(start)), out);
}

uint32_t RecordChecksum(const JobRecord& rec) {
  std::string bytes;
  AppendUnchecked(rec, &bytes, 0);
  return Crc32c(bytes);
}

Result<Reader::Entry> Reader::Next() {
  const auto span = SpanAt(blob_, pos_);
  if (!span) return Status::Error("unreadable record at byte " + std::to_string(pos_));
  const size_t end = pos_ + span->size;
  if (!span->intact && end != blob_.size()) {
    // The length may be the damaged part: trust it only if the next record checks out.
    const auto next = SpanAt(blob_, end);
    if (!next || !next->intact) {
      return Status::Error("damaged record at byte " + std::to_string(pos_) +
                           " whose end cannot be confirmed");
    }
  }
  Entry entry;
  entry.bytes = blob_.substr(pos_, span->size);
  entry.intact = span->intact;
  size_t id_pos = 0;
  (void)ReadVarint(entry.bytes, &id_pos);
  const auto id = ReadVarint(entry.bytes.substr(0, span->size - kChecksumBytes), &id_pos);
  if (!id) {
    if (entry.intact) return Status::Error("unreadable job id at byte " + std::to_string(pos_));
  } else {
    entry.id = *id;
  }
  pos_ = end;
  return entry;
}

Status DecodeRecord(std::string_view bytes, JobRecord* rec) {
  const auto span = SpanAt(bytes, 0);
  if (!span || span->size != bytes.size()) return Status::Error("record length mismatch");
  if (!span->intact) return Status::Error("checksum mismatch");
  return DecodeUnchecked(bytes.substr(0, bytes.size() - kChecksumBytes), rec);
}

std::string DescribeDamaged(std::string_view bytes) {
  JobRecord rec;
  if (bytes.size() > kChecksumBytes &&
      DecodeUnchecked(bytes.substr(0, bytes.size() - kChecksumBytes), &rec).ok()) {
    return "handle " + ErrorExcerpt(rec.handle) + ", function " + ErrorExcerpt(rec.function) +
           ", " + std::to_string(rec.data.size()) + " bytes of data (as stored, unverified)";
  }
  return std::to_string(bytes.size()) + " bytes whose fields do not parse";
}

Status ConvertLegacySegment(std::string_view v3_blob, std::string* out) {
  out->clear();
  out->reserve(v3_blob.size() + v3_blob.size() / 16);
  JobRecord rec;
  size_t pos = 0;
  while (pos < v3_blob.size()) {
    size_t p = pos;
    const auto body = ReadVarint(v3_blob, &p);
    if (!body || *body == 0 || *body > v3_blob.size() - p) {
      return Status::Error("truncated record at byte " + std::to_string(pos));
    }
    const std::string_view bytes = v3_blob.substr(pos, p - pos + *body);
    if (Status s = DecodeUnchecked(bytes, &rec); !s.ok()) {
      return Status::Error(s.message() + " at byte " + std::to_string(pos));
    }
    AppendRecord(rec, out);
    pos = p + *body;
  }
  return Status::Ok();
}

}  // namespace roundhouse::storage::segment
