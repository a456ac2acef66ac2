#include "server/output_queue.h"

#include <utility>

namespace roundhouse::server {

std::string* OutputQueue::Tail() {
  if (held_.empty()) return &ready_;
  return &held_.back().after;
}

void OutputQueue::AddPlaceholder(uint64_t ticket) {
  if (!held_.empty()) held_bytes_ += held_.back().after.size();  // closed: Tail() moves on
  Held held;
  held.ticket = ticket;
  held_.push_back(std::move(held));
}

void OutputQueue::Release() {
  while (!held_.empty() && held_.front().filled) {
    Held& head = held_.front();
    ready_.append(head.reply);
    ready_.append(head.after);
    PopHead();
  }
}

void OutputQueue::PopHead() {
  const Held& head = held_.front();
  held_bytes_ -= head.reply.size();
  if (held_.size() > 1) held_bytes_ -= head.after.size();  // the last `after` is not counted
  held_.pop_front();
}

void OutputQueue::TakeReady(std::string* out) {
  out->clear();
  std::swap(*out, ready_);
}

size_t OutputQueue::pending_bytes() const {
  return ready_.size() + held_bytes_ + (held_.empty() ? 0 : held_.back().after.size());
}

void OutputQueue::Clear() {
  ready_.clear();
  held_.clear();
  held_bytes_ = 0;
}

}  // namespace roundhouse::server
