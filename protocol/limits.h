// Limits on every size a peer controls. One struct, one place: the server fills it from the
// command line / config file and hands it to every parser. Pure data, no behaviour.
#pragma once

#include <cstddef>
#include <cstdint>

namespace roundhouse::protocol {

struct Limits {
  // Largest binary packet body accepted (doc/protocol.md §1.1). A larger body is answered with
  // ERROR DATA_TOO_LARGE and discarded as it arrives; the connection stays open.
  uint64_t max_packet_body = 64ull * 1024 * 1024;
  // Largest unique id (and SUBMIT_REDUCE_JOB reducer) accepted; 65+ bytes is ARGUMENT_TOO_LARGE.
  size_t max_unique = 64;
  // Job handles are at most this many bytes (a 64-byte buffer including NUL in libgearman).
  size_t max_handle = 63;
  // Admin text line, excluding its '\n'. One byte more closes the connection (gearmand's rule).
  size_t max_text_line = 8191;
  // Admin text line token count; more tokens close the connection.
  size_t max_text_tokens = 5;
  // CAN_DO_TIMEOUT's decimal milliseconds: longer closes the connection.
  size_t max_timeout_digits = 20;
  // SET_CLIENT_ID keeps this many bytes.
  size_t max_client_id = 127;
  // OPTION_REQ names this long or longer are UNKNOWN_OPTION.
  size_t max_option_name = 64;
  // Bytes queued for a peer before we stop reading from it (back-pressure).
  size_t max_pending_output = 64ull * 1024 * 1024;
  // Hard cap on bytes queued for one peer, whoever produced them (a worker's WORK_DATA to a
  // client that does not read): past it the connection is closed as if its peer had left. A
  // reply to a peer with nothing queued is always taken, so one maximal packet still goes out.
  size_t max_output_queue = 256ull * 1024 * 1024;
  // HTTP request/response bodies (status endpoint, Jenkins client).
  size_t max_http_body = 16ull * 1024 * 1024;
  size_t max_http_header = 64 * 1024;
};

}  // namespace roundhouse::protocol
