// Helpers for building wire bytes in protocol tests: hex dumps as doc/protocol.md writes them, and
// packet headers with arbitrary (also invalid) fields.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/codec.h"

namespace roundhouse::protocol::testing {

// "00 52 45 51" → the four bytes. Spaces and '|' are ignored.
inline std::string Hex(std::string_view dump) {
  std::string bytes;
  int high = -1;
  for (char c : dump) {
    int nibble;
    if (c >= '0' && c <= '9') {
      nibble = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      nibble = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      nibble = c - 'A' + 10;
    } else {
      continue;
    }
    if (high < 0) {
      high = nibble;
    } else {
      bytes.push_back(static_cast<char>(high * 16 + nibble));
      high = -1;
    }
  }
  return bytes;
}

inline void PutBigEndian32(std::string* out, uint32_t v) {
  out->push_back(static_cast<char>(v >> 24));
  out->push_back(static_cast<char>((v >> 16) & 0xff));
  out->push_back(static_cast<char>((v >> 8) & 0xff));
  out->push_back(static_cast<char>(v & 0xff));
}

// A 12-byte header with any magic, type number and size, valid or not.
inline std::string Header(std::string_view magic, uint32_t type, uint32_t size) {
  std::string out(magic);
  PutBigEndian32(&out, type);
  PutBigEndian32(&out, size);
  return out;
}

// A request packet with `payload` as its whole body (written independently of the encoders).
inline std::string Request(uint32_t type, std::string_view payload) {
  return Header(kRequestMagic, type, static_cast<uint32_t>(payload.size())) + std::string(payload);
}

inline std::string Request(PacketType type, std::string_view payload) {
  return Request(static_cast<uint32_t>(type), payload);
}

}  // namespace roundhouse::protocol::testing
