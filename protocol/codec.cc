// Frame parsing and packet encoding (doc/protocol.md §1). The parser is on the server's hot
// path: it allocates and copies nothing. A binary packet costs a header check plus one memchr per
// separator; waiting for a body costs O(1) per call. A text line still missing its '\n' is
// rescanned on the next call, a cost bounded by Limits::max_text_line.
#include "protocol/codec.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace roundhouse::protocol {
namespace {

uint32_t LoadBigEndian32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

void StoreBigEndian32(uint32_t v, char* p) {
  p[0] = static_cast<char>((v >> 24) & 0xff);
  p[1] = static_cast<char>((v >> 16) & 0xff);
  p[2] = static_cast<char>((v >> 8) & 0xff);
  p[3] = static_cast<char>(v & 0xff);
}

// Appends the 12-byte header. A body of 4 GiB or more cannot be framed; callers never build one
// (Limits::max_packet_body is far below), so that is an invariant, not an input error.
void AppendHeader(std::string* out, PacketType type, size_t body_size, Magic magic) {
  assert(body_size <= UINT32_MAX);
  char header[kHeaderSize];
  const std::string_view magic_bytes = magic == Magic::kRequest ? kRequestMagic : kResponseMagic;
  std::memcpy(header, magic_bytes.data(), magic_bytes.size());
  StoreBigEndian32(static_cast<uint32_t>(type), header + 4);
  StoreBigEndian32(static_cast<uint32_t>(body_size), header + 8);
  out->append(header, kHeaderSize);
}

// Makes room for `extra` more bytes with geometric growth, so a loop of appends stays linear.
void Reserve(std::string* out, size_t extra) {
  const size_t needed = out->size() + extra;
  if (needed > out->capacity()) out->reserve(std::max(needed, 2 * out->capacity()));
}

// Text line at the start of `in` (first byte is not '\0'). See ParseFrame for the rules.
ParseResult ParseTextLine(std::string_view in, const Limits& limits, size_t* consumed, Frame* out) {
  // Only the first max_text_line + 1 bytes can hold an acceptable '\n'.
  const size_t window = in.size() > limits.max_text_line ? limits.max_text_line + 1 : in.size();
  const void* newline = std::memchr(in.data(), '\n', window);
  if (newline == nullptr) {
    if (in.size() > limits.max_text_line) {
      out->error = "admin text line too long";
      return ParseResult::kError;
    }
    return ParseResult::kNeedMore;
  }
  const size_t line_size = static_cast<size_t>(static_cast<const char*>(newline) - in.data());
  std::string_view text = in.substr(0, line_size);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  out->kind = FrameKind::kText;
  out->text = text;
  out->packet.type = PacketType::kText;
  out->packet.payload = {};
  out->packet.count = 0;
  out->discard = 0;
  out->error = nullptr;
  *consumed = line_size + 1;
  return ParseResult::kOk;
}

// Binary packet at the start of `in` (first byte is '\0').
ParseResult ParseBinaryPacket(std::string_view in, const Limits& limits, size_t* consumed,
                              Frame* out) {
  if (in.size() < kHeaderSize) return ParseResult::kNeedMore;
  const std::string_view magic_bytes = in.substr(0, 4);
  Magic magic;
  if (magic_bytes == kRequestMagic) {
    magic = Magic::kRequest;
  } else if (magic_bytes == kResponseMagic) {
    magic = Magic::kResponse;
  } else {
    out->error = "bad packet magic";
    return ParseResult::kError;
  }
  const uint32_t type_number = LoadBigEndian32(in.data() + 4);
  if (type_number == 0 || type_number > kMaxPacketType) {
    out->error = "bad packet type";
    return ParseResult::kError;
  }
  const auto type = static_cast<PacketType>(type_number);
  const uint32_t body_size = LoadBigEndian32(in.data() + 8);
  const bool oversized = body_size > limits.max_packet_body;
  if (!oversized && in.size() - kHeaderSize < body_size) return ParseResult::kNeedMore;

  // From here on the result is kOk: `out` may be written.
  out->text = {};
  out->error = nullptr;
  out->packet.magic = magic;
  out->packet.type = type;
  if (oversized) {
    out->kind = FrameKind::kOversized;
    out->packet.payload = {};
    out->packet.count = 0;
    out->discard = body_size;
    *consumed = kHeaderSize;
    return ParseResult::kOk;
  }
  out->discard = 0;
  out->packet.payload = in.substr(kHeaderSize, body_size);
  out->kind = SplitArguments(type, out->packet.payload, &out->packet)
                  ? FrameKind::kPacket
                  : FrameKind::kMissingArguments;
  *consumed = kHeaderSize + body_size;
  return ParseResult::kOk;
}

}  // namespace

ParseResult ParseFrame(std::string_view in, const Limits& limits, size_t* consumed, Frame* out) {
  if (in.empty()) return ParseResult::kNeedMore;
  if (in.front() == '\0') return ParseBinaryPacket(in, limits, consumed, out);
  return ParseTextLine(in, limits, consumed, out);
}

bool SplitArguments(PacketType type, std::string_view payload, Packet* out) {
  out->count = 0;
  const auto type_number = static_cast<uint32_t>(type);
  if (type_number == 0 || type_number > kMaxPacketType) return false;
  const ArgRule rule = RuleFor(type);
  if (rule.args == 0 && !rule.data) return true;  // 0/no: the payload is ignored

  // N/yes: N terminated arguments, then DATA. N/no: N-1 terminated, then the last argument.
  const size_t terminated = rule.data ? rule.args : rule.args - 1u;
  const char* p = payload.data();
  const char* const end = p + payload.size();
  uint8_t count = 0;
  for (size_t i = 0; i < terminated; ++i) {
    if (p == end) return false;  // also keeps a null data() away from memchr
    const auto* sep = static_cast<const char*>(std::memchr(p, '\0', static_cast<size_t>(end - p)));
    if (sep == nullptr) return false;
    out->arg[count++] = std::string_view(p, static_cast<size_t>(sep - p));
    p = sep + 1;
  }
  out->arg[count++] = std::string_view(p, static_cast<size_t>(end - p));
  out->count = count;
  return true;
}

void AppendPacket(std::string* out, PacketType type, std::initializer_list<std::string_view> args,
                  Magic magic) {
  size_t body_size = args.size() == 0 ? 0 : args.size() - 1;
  for (std::string_view arg : args) body_size += arg.size();
  Reserve(out, kHeaderSize + body_size);
  AppendHeader(out, type, body_size, magic);
  bool first = true;
  for (std::string_view arg : args) {
    if (!first) out->push_back('\0');
    first = false;
    out->append(arg);
  }
}

void AppendRawPacket(std::string* out, PacketType type, std::string_view payload, Magic magic) {
  Reserve(out, kHeaderSize + payload.size());
  AppendHeader(out, type, payload.size(), magic);
  out->append(payload);
}

void AppendError(std::string* out, std::string_view code, std::string_view text) {
  AppendPacket(out, PacketType::kError, {code, text}, Magic::kResponse);
}

}  // namespace roundhouse::protocol
