#include "storage/segment_index.h"

#include <utility>

namespace roundhouse::storage {

void SegmentIndex::Delta::clear() {
  touched.clear();
  removed.clear();
  compacted.clear();
  fresh.clear();
}

void SegmentIndex::Load(uint64_t segment, std::vector<uint64_t> ids, size_t bytes,
                        std::vector<uint8_t> done) {
  Segment s;
  s.slots = static_cast<uint32_t>(ids.size());
  s.bytes = bytes;
  done.resize((ids.size() + 7) / 8, 0);
  s.done = std::move(done);
  for (uint32_t slot = 0; slot < s.slots; ++slot) {
    if (s.is_done(slot)) continue;
    ++s.live;
    where_[ids[slot]] = Location{segment, slot};
  }
  if (s.sparse()) sparse_.insert(segment);
  segments_[segment] = std::move(s);
  if (segment >= next_segment_) next_segment_ = segment + 1;
}

bool SegmentIndex::PlanRemove(uint64_t id, Delta* delta) const {
  auto it = where_.find(id);
  if (it == where_.end()) return false;
  const Location loc = it->second;
  auto known = segments_.find(loc.segment);
  if (known == segments_.end()) return false;  // cannot happen: Apply keeps both maps in step
  auto [t, inserted] = delta->touched.try_emplace(loc.segment);
  if (inserted) t->second = known->second;
  Segment& s = t->second;
  if (!s.is_done(loc.slot)) {
    s.done[loc.slot / 8] = static_cast<uint8_t>(s.done[loc.slot / 8] | 1u << (loc.slot % 8));
    --s.live;
    delta->removed.push_back(id);
  }
  return true;
}

std::string* SegmentIndex::PlanAppend(uint64_t id, Delta* delta) const {
  auto& fresh = delta->fresh;
  if (fresh.empty() || fresh.back().blob.size() >= kSegmentBytes) {
    fresh.emplace_back();
    fresh.back().id = next_segment_ + fresh.size() - 1;
  }
  fresh.back().ids.push_back(id);
  return &fresh.back().blob;
}

const SegmentIndex::Segment* SegmentIndex::Find(uint64_t segment, const Delta& delta) const {
  if (auto t = delta.touched.find(segment); t != delta.touched.end()) return &t->second;
  auto it = segments_.find(segment);
  return it == segments_.end() ? nullptr : &it->second;
}

const SegmentIndex::Location* SegmentIndex::Where(uint64_t id) const {
  auto it = where_.find(id);
  return it == where_.end() ? nullptr : &it->second;
}

std::vector<uint64_t> SegmentIndex::PlanCompaction(const Delta& delta) const {
  std::set<uint64_t> candidates = sparse_;
  for (const auto& [id, s] : delta.touched) {
    if (s.sparse() && s.live > 0 && pinned_.count(id) == 0) {
      candidates.insert(id);
    } else {
      candidates.erase(id);  // deleted outright (no live record) or no longer sparse
    }
  }
  std::vector<uint64_t> out;
  size_t bytes = 0;
  for (uint64_t id : candidates) {
    const Segment* s = Find(id, delta);
    if (s == nullptr) continue;
    if (!out.empty() && bytes + s->bytes > kCompactBytesPerCommit) break;
    bytes += s->bytes;
    out.push_back(id);
  }
  return out;
}

void SegmentIndex::Apply(Delta&& delta) {
  for (uint64_t id : delta.removed) where_.erase(id);
  for (auto& [id, s] : delta.touched) {
    if (s.live == 0) {
      segments_.erase(id);
      sparse_.erase(id);
      pinned_.erase(id);
      continue;
    }
    if (s.sparse() && pinned_.count(id) == 0) {
      sparse_.insert(id);
    } else {
      sparse_.erase(id);
    }
    segments_[id] = std::move(s);
  }
  // Records moved out of compacted segments are still in where_; the fresh segments below
  // overwrite their locations.
  for (uint64_t id : delta.compacted) {
    segments_.erase(id);
    sparse_.erase(id);
    pinned_.erase(id);
  }
  for (auto& f : delta.fresh) {
    Segment s;
    s.slots = static_cast<uint32_t>(f.ids.size());
    s.live = s.slots;
    s.bytes = f.blob.size();
    s.done.assign((f.ids.size() + 7) / 8, 0);
    for (uint32_t slot = 0; slot < s.slots; ++slot) where_[f.ids[slot]] = Location{f.id, slot};
    segments_[f.id] = std::move(s);
    next_segment_ = f.id + 1;
  }
  delta.clear();
}

}  // namespace roundhouse::storage
