// libFuzzer target for the connection framing: arbitrary bytes go through ParseFrame the way a
// connection feeds it, and admin text frames through Tokenize.
//
// Input layout: byte 0 picks a Limits preset, bytes 1-2 (little-endian) pick where the stream is
// cut into two reads, the rest is the byte stream from the peer. The stream is driven twice: as one
// read straight from the fuzzer's exactly-sized buffer (so ASan sees any over-read), and as two
// reads through a connection-like buffer. Both must produce the same frames and the same final
// state. Every frame is checked against the contract in protocol/codec.h.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/admin_line.h"
#include "protocol/codec.h"

namespace roundhouse::protocol {
namespace {

// A failed invariant aborts, which libFuzzer reports as a crash with the input saved.
void Require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_frames invariant failed: %s\n", what);
    std::abort();
  }
}

// Compares addresses as integers so that a wild view is reported, not undefined behaviour.
bool Inside(std::string_view part, std::string_view whole) {
  if (part.empty()) return true;  // an empty view's pointer carries no meaning
  const auto begin = reinterpret_cast<uintptr_t>(whole.data());
  const auto at = reinterpret_cast<uintptr_t>(part.data());
  return at >= begin && part.size() <= whole.size() && at - begin <= whole.size() - part.size();
}

Limits ChooseLimits(uint8_t selector) {
  Limits limits;  // preset 0: the server's defaults
  switch (selector % 4) {
    case 1:
      limits.max_packet_body = 0;
      limits.max_text_line = 0;
      limits.max_text_tokens = 0;
      break;
    case 2:
      limits.max_packet_body = 8;
      limits.max_text_line = 16;
      limits.max_text_tokens = 2;
      break;
    case 3:
      limits.max_packet_body = 64;
      limits.max_text_line = 64;
      break;
    default:
      break;
  }
  return limits;
}

// AppendPacket takes an initializer_list, so spell out each argument count.
void AppendFromArgs(std::string* out, const Packet& p) {
  const auto& a = p.arg;
  switch (p.count) {
    case 0:
      AppendPacket(out, p.type, {}, p.magic);
      break;
    case 1:
      AppendPacket(out, p.type, {a[0]}, p.magic);
      break;
    case 2:
      AppendPacket(out, p.type, {a[0], a[1]}, p.magic);
      break;
    case 3:
      AppendPacket(out, p.type, {a[0], a[1], a[2]}, p.magic);
      break;
    case 4:
      AppendPacket(out, p.type, {a[0], a[1], a[2], a[3]}, p.magic);
      break;
    case 5:
      AppendPacket(out, p.type, {a[0], a[1], a[2], a[3], a[4]}, p.magic);
      break;
    case 6:
      AppendPacket(out, p.type, {a[0], a[1], a[2], a[3], a[4], a[5]}, p.magic);
      break;
    case 7:
      AppendPacket(out, p.type, {a[0], a[1], a[2], a[3], a[4], a[5], a[6]}, p.magic);
      break;
    case 8:
      AppendPacket(out, p.type, {a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]}, p.magic);
      break;
    default:
      Require(false, "argument count above 8");
  }
}

void CheckTokens(std::string_view text, const Limits& limits) {
  std::vector<std::string_view> tokens;
  const bool ok = Tokenize(text, limits, &tokens);
  // Independent count: one token, plus one per run of spaces followed by a non-space.
  size_t expected = 1;
  for (size_t i = 1; i < text.size(); ++i) {
    if (text[i - 1] == ' ' && text[i] != ' ') ++expected;
  }
  Require(ok == (expected <= limits.max_text_tokens), "Tokenize limit decision");
  if (!ok) return;
  Require(tokens.size() == expected, "token count");
  Require(tokens[0].data() == text.data() || text.empty(), "first token starts the line");
  for (size_t i = 0; i < tokens.size(); ++i) {
    Require(Inside(tokens[i], text), "token inside line");
    Require(tokens[i].find(' ') == std::string_view::npos, "token without spaces");
    Require(i == 0 || !tokens[i].empty(), "only the first token may be empty");
  }
}

void CheckPacketFrame(std::string_view in, size_t consumed, const Frame& frame) {
  const Packet& p = frame.packet;
  const std::string_view bytes = in.substr(0, consumed);
  Require(consumed == kHeaderSize + p.payload.size(), "packet consumed = header + body");
  Require(p.payload.data() == in.data() + kHeaderSize, "payload follows the header");
  Require((p.magic == Magic::kRequest ? kRequestMagic : kResponseMagic) == in.substr(0, 4),
          "magic reported as received");

  std::string reencoded;
  AppendRawPacket(&reencoded, p.type, p.payload, p.magic);
  Require(reencoded == bytes, "AppendRawPacket reproduces the frame");

  Packet again;
  const bool split = SplitArguments(p.type, p.payload, &again);
  if (frame.kind == FrameKind::kMissingArguments) {
    Require(!split, "missing arguments stays missing");
    return;
  }
  Require(split, "a packet frame splits");
  const ArgRule rule = RuleFor(p.type);
  const size_t expected = rule.args == 0 && !rule.data ? 0 : rule.args + (rule.data ? 1u : 0u);
  Require(p.count == expected, "argument count follows the rule");
  if (p.count == 0) return;  // 0/no: payload ignored

  std::string joined;
  for (size_t i = 0; i < p.count; ++i) {
    Require(Inside(p.arg[i], p.payload), "argument inside payload");
    if (i > 0) joined.push_back('\0');
    joined.append(p.arg[i]);
  }
  Require(joined == p.payload, "arguments joined by NUL are the payload");
  std::string from_args;
  AppendFromArgs(&from_args, p);
  Require(from_args == bytes, "AppendPacket of the arguments reproduces the frame");
}

// Checks one ParseFrame call on `in` against the codec.h contract.
void CheckFrame(std::string_view in, const Limits& limits, ParseResult result, size_t consumed,
                const Frame& frame) {
  if (result == ParseResult::kError) {
    Require(frame.error != nullptr, "kError has a reason");
    return;
  }
  if (result == ParseResult::kNeedMore) return;
  Require(consumed > 0 && consumed <= in.size(), "0 < consumed <= input");
  switch (frame.kind) {
    case FrameKind::kText: {
      Require(in[0] != '\0', "text frames start with a non-NUL byte");
      Require(in[consumed - 1] == '\n', "text frame ends at a newline");
      const size_t line = consumed - 1;
      Require(line <= limits.max_text_line, "text line within limit");
      Require(frame.text.data() == in.data(), "text starts the frame");
      Require(frame.text.size() == line || (frame.text.size() + 1 == line && in[line - 1] == '\r'),
              "text is the line minus one CR");
      Require(frame.text.find('\n') == std::string_view::npos, "text has no newline");
      CheckTokens(frame.text, limits);
      break;
    }
    case FrameKind::kOversized:
      Require(in[0] == '\0', "oversized frames are binary");
      Require(consumed == kHeaderSize, "oversized consumes the header only");
      Require(frame.discard > limits.max_packet_body, "oversized means over the limit");
      break;
    case FrameKind::kPacket:
    case FrameKind::kMissingArguments:
      Require(in[0] == '\0', "packets start with NUL");
      CheckPacketFrame(in, consumed, frame);
      break;
  }
}

// What a connection observed: each frame's kind and bytes, then how the stream ended.
struct Trace {
  std::vector<std::pair<FrameKind, std::string>> frames;
  bool closed = false;      // kError
  std::string pending;      // unconsumed bytes at the end
  uint64_t discarding = 0;  // body bytes of an oversized packet still to drop
  bool operator==(const Trace&) const = default;
};

// Parses every complete frame in `in`, dropping oversized bodies, and records them in `trace`
// (copied: no view into `in` escapes). Returns the number of bytes used.
size_t Drain(std::string_view in, const Limits& limits, Trace* trace) {
  size_t used = 0;
  while (!trace->closed) {
    if (trace->discarding > 0) {
      const size_t drop =
          static_cast<size_t>(std::min<uint64_t>(trace->discarding, in.size() - used));
      trace->discarding -= drop;
      used += drop;
      if (trace->discarding > 0) break;
    }
    const std::string_view rest = in.substr(used);
    Frame frame;
    size_t consumed = 0;
    const ParseResult result = ParseFrame(rest, limits, &consumed, &frame);
    CheckFrame(rest, limits, result, consumed, frame);
    if (result == ParseResult::kNeedMore) break;
    if (result == ParseResult::kError) {
      trace->closed = true;
      break;
    }
    trace->frames.emplace_back(frame.kind, std::string(rest.substr(0, consumed)));
    if (frame.kind == FrameKind::kOversized) trace->discarding = frame.discard;
    used += consumed;
  }
  return used;
}

// The stream as one read, parsed in place in the fuzzer's buffer.
Trace OneRead(std::string_view stream, const Limits& limits) {
  Trace trace;
  const size_t used = Drain(stream, limits, &trace);
  if (!trace.closed) trace.pending = std::string(stream.substr(used));
  return trace;
}

// The stream as reads [0, cut) and [cut, end) through a connection buffer. Each parse runs on an
// exactly-sized heap copy so that ASan catches reads past the buffered bytes.
Trace TwoReads(std::string_view stream, size_t cut, const Limits& limits) {
  Trace trace;
  std::string buffer;
  for (std::string_view read : {stream.substr(0, cut), stream.substr(cut)}) {
    buffer.append(read);
    const std::unique_ptr<char[]> exact(new char[buffer.size()]);
    if (!buffer.empty()) std::memcpy(exact.get(), buffer.data(), buffer.size());
    const size_t used = Drain(std::string_view(exact.get(), buffer.size()), limits, &trace);
    if (trace.closed) return trace;
    buffer.erase(0, used);
  }
  trace.pending = buffer;
  return trace;
}

}  // namespace
}  // namespace roundhouse::protocol

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace roundhouse::protocol;
  if (size < 3) return 0;
  const Limits limits = ChooseLimits(data[0]);
  const size_t cut_seed = size_t{data[1]} | (size_t{data[2]} << 8);
  const std::string_view stream(reinterpret_cast<const char*>(data + 3), size - 3);
  const size_t cut = cut_seed % (stream.size() + 1);

  const Trace one = OneRead(stream, limits);
  const Trace two = TwoReads(stream, cut, limits);
  Require(one == two, "one read and two reads see the same frames");
  return 0;
}
