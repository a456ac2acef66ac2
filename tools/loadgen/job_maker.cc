#include "tools/loadgen/job_maker.h"

#include <charconv>
#include <cstring>

#include "protocol/codec.h"

namespace roundhouse::loadgen {

using protocol::PacketType;

std::vector<std::string> FunctionNames(const Options& options) {
  std::vector<std::string> names;
  names.reserve(static_cast<size_t>(options.functions));
  for (int i = 0; i < options.functions; ++i) {
    names.push_back(options.function_prefix + std::to_string(i));
  }
  return names;
}

std::string MakePayload(size_t size) {
  std::string payload(size, '\0');
  for (size_t i = 0; i < size; ++i) payload[i] = static_cast<char>('a' + i % 26);
  return payload;
}

JobMaker::JobMaker(const Options& options, int client_index, uint64_t run_id)
    : background_(options.mode == Mode::kBackground || options.mode == Mode::kSubmitOnly),
      unique_kind_(options.unique),
      priority_kind_(options.priority),
      functions_(FunctionNames(options)),
      payload_(MakePayload(options.payload)),
      random_(run_id ^ (0x9e3779b97f4a7c15ull * static_cast<uint64_t>(client_index + 1))) {
  char buffer[32];
  auto end = std::to_chars(buffer, buffer + sizeof buffer, run_id, 16).ptr;
  seq_prefix_.assign(buffer, end);
  seq_prefix_ += '-';
  end = std::to_chars(buffer, buffer + sizeof buffer, client_index).ptr;
  seq_prefix_.append(buffer, end);
  seq_prefix_ += '-';
}

size_t JobMaker::MakeUnique(char* unique) {
  switch (unique_kind_) {
    case UniqueKind::kNone:
      return 0;
    case UniqueKind::kSeq: {
      std::memcpy(unique, seq_prefix_.data(), seq_prefix_.size());
      char* end = std::to_chars(unique + seq_prefix_.size(), unique + kMaxUnique, sequence_).ptr;
      return static_cast<size_t>(end - unique);
    }
    case UniqueKind::kUuid: {
      // RFC 4122 version 4 layout: 8-4-4-4-12 hex digits.
      static constexpr char kHex[] = "0123456789abcdef";
      uint64_t high = random_(), low = random_();
      high = (high & ~0xf000ull) | 0x4000ull;                // version 4
      low = (low & ~(0xc000ull << 48)) | (0x8000ull << 48);  // variant 10
      char* p = unique;
      for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6) *p++ = '-';
        *p++ = kHex[(high >> (60 - 4 * i)) & 0xf];
      }
      for (int i = 0; i < 16; ++i) {
        if (i == 0 || i == 4) *p++ = '-';
        *p++ = kHex[(low >> (60 - 4 * i)) & 0xf];
      }
      return static_cast<size_t>(p - unique);
    }
  }
  return 0;
}

size_t JobMaker::AppendNext(std::string* out, char* unique) {
  PriorityKind priority = priority_kind_;
  if (priority == PriorityKind::kMixed) {
    static constexpr PriorityKind kCycle[] = {PriorityKind::kHigh, PriorityKind::kNormal,
                                              PriorityKind::kLow};
    priority = kCycle[sequence_ % 3];
  }
  PacketType type = PacketType::kSubmitJob;
  switch (priority) {
    case PriorityKind::kHigh:
      type = background_ ? PacketType::kSubmitJobHighBg : PacketType::kSubmitJobHigh;
      break;
    case PriorityKind::kLow:
      type = background_ ? PacketType::kSubmitJobLowBg : PacketType::kSubmitJobLow;
      break;
    default:
      type = background_ ? PacketType::kSubmitJobBg : PacketType::kSubmitJob;
  }
  const size_t unique_size = MakeUnique(unique);
  const std::string& function = functions_[sequence_ % functions_.size()];
  protocol::AppendPacket(out, type, {function, std::string_view(unique, unique_size), payload_},
                         protocol::Magic::kRequest);
  ++sequence_;
  return unique_size;
}

}  // namespace roundhouse::loadgen
