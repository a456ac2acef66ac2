// Framing of one Gearman connection's input: binary packets and admin text lines on the same
// socket (doc/protocol.md §1), and encoders for outgoing packets.
//
// Parsing never writes into its input and never reads a socket. The caller keeps the bytes it
// received in a buffer, calls ParseFrame on the unconsumed part, acts on the frame, then drops
// `consumed` bytes. Views in the returned Frame borrow from that buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "protocol/limits.h"
#include "protocol/packet.h"

namespace roundhouse::protocol {

enum class ParseResult {
  kOk,        // *out holds one frame; *consumed bytes belong to it
  kNeedMore,  // no complete frame yet; nothing consumed
  kError,     // the stream is unusable (§1.4): close the connection without a reply
};

enum class FrameKind {
  kPacket,            // a well-formed packet with magic `\0REQ` or `\0RES` (check packet.magic)
  kText,              // an admin text line; `text` excludes the '\n' and one '\r' before it
  kMissingArguments,  // framing intact but too few `\0` separators: reply INVALID_PACKET
  kOversized,         // header announced a body over Limits::max_packet_body: only the 12-byte
                      // header is consumed; the caller must discard `discard` more bytes as
                      // they arrive and reply DATA_TOO_LARGE
};

struct Frame {
  FrameKind kind = FrameKind::kPacket;
  Packet packet;          // kPacket; for kMissingArguments only type and payload are set
  std::string_view text;  // kText
  uint64_t discard = 0;   // kOversized: body bytes still to drop
  const char* error = nullptr;  // kError: static reason for the log
};

// Parses the first frame in `in`. `consumed` and `out` are written only on kOk (and `out->error`
// on kError).
ParseResult ParseFrame(std::string_view in, const Limits& limits, size_t* consumed, Frame* out);

// Splits `payload` by the argument rule of `type` into `out` (arg/count); false if it has too
// few separators. Exposed for the fuzzer and for clients in tools/ that parse responses.
bool SplitArguments(PacketType type, std::string_view payload, Packet* out);

// Appends one packet: magic, type, size, then `args` joined by single `\0` bytes (the last one
// unterminated). Response magic unless `magic` says otherwise.
void AppendPacket(std::string* out, PacketType type, std::initializer_list<std::string_view> args,
                  Magic magic = Magic::kResponse);

// Appends a packet whose payload is given whole (forwarding a worker's bytes unchanged).
void AppendRawPacket(std::string* out, PacketType type, std::string_view payload,
                     Magic magic = Magic::kResponse);

// Appends `ERROR` with CODE\0TEXT.
void AppendError(std::string* out, std::string_view code, std::string_view text);

}  // namespace roundhouse::protocol
