#include "storage/segment_codec.h"

#include <optional>

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

}  // namespace

void AppendRecord(const JobRecord& rec, std::string* out) {
  const uint64_t when = ZigZag(rec.when);
  const size_t body = VarintSize(rec.id) + 1 + VarintSize(when) + StringSize(rec.handle) +
                      StringSize(rec.function) + StringSize(rec.unique) + StringSize(rec.reducer) +
                      StringSize(rec.data);
  out->reserve(out->size() + VarintSize(body) + body);
  AppendVarint(body, out);
  AppendVarint(rec.id, out);
  out->push_back(static_cast<char>(rec.priority));
  AppendVarint(when, out);
  for (const std::string* s : {&rec.handle, &rec.function, &rec.unique, &rec.reducer, &rec.data}) {
    AppendVarint(s->size(), out);
    out->append(*s);
  }
}

Result<Reader::Entry> Reader::Next() {
  size_t pos = pos_;
  const auto body = ReadVarint(blob_, &pos);
  if (!body || *body == 0 || *body > blob_.size() - pos) {
    return Status::Error("truncated record at byte " + std::to_string(pos_));
  }
  const std::string_view bytes = blob_.substr(pos_, pos - pos_ + *body);
  size_t id_pos = pos;
  const auto id = ReadVarint(blob_.substr(0, pos + *body), &id_pos);
  if (!id) return Status::Error("unreadable job id at byte " + std::to_string(pos_));
  pos_ = pos + *body;
  return Entry{*id, bytes};
}

Status DecodeRecord(std::string_view bytes, JobRecord* rec) {
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

}  // namespace roundhouse::storage::segment
