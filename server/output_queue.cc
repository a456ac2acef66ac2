#include "server/output_queue.h"

#include <utility>

namespace roundhouse::server {

std::string* OutputQueue::Tail() {
  if (held_.empty()) return &ready_;
  return &held_.back().after;
}

void OutputQueue::AddPlaceholder(uint64_t ticket) {
  Held held;
  held.ticket = ticket;
  held_.push_back(std::move(held));
}

void OutputQueue::Release() {
  while (!held_.empty() && held_.front().filled) {
    Held& head = held_.front();
    ready_.append(head.reply);
    ready_.append(head.after);
    held_.pop_front();
  }
}

void OutputQueue::TakeReady(std::string* out) {
  out->clear();
  std::swap(*out, ready_);
}

size_t OutputQueue::pending_bytes() const {
  size_t total = ready_.size();
  for (const Held& held : held_) total += held.reply.size() + held.after.size();
  return total;
}

void OutputQueue::Clear() {
  ready_.clear();
  held_.clear();
}

}  // namespace roundhouse::server
