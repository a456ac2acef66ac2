// MemoryStore: the in-memory JobStore other layers' tests use.
#include "storage/memory_store.h"

#include "test/unit/storage/storage_test_util.h"

namespace roundhouse::storage {
namespace {

using testing::Record;

TEST_CASE("memory store runs callbacks only at Commit, in add order", "[storage]") {
  MemoryStore store;
  std::vector<uint64_t> order;
  for (uint64_t id = 1; id <= 3; ++id) {
    store.Add(Record(id, "fn", "x"), [&order, id](const Status& s) {
      CHECK(s.ok());
      order.push_back(id);
    });
  }
  CHECK(order.empty());
  CHECK(store.jobs().empty());
  CHECK(store.queued_adds() == 3);
  CHECK(store.Commit() == 3);
  CHECK(order == std::vector<uint64_t>{1, 2, 3});
  CHECK(store.jobs().size() == 3);
}

TEST_CASE("memory store fails an injected commit and keeps nothing of its adds", "[storage]") {
  MemoryStore store;
  store.Add(Record(1, "fn", "x"), [](const Status& s) { CHECK(s.ok()); });
  store.Commit();
  store.FailNextCommit(Status::Error("disk full"));
  Status got;
  store.Add(Record(2, "fn", "y"), [&](const Status& s) { got = s; });
  store.Remove(1);
  store.Commit();
  CHECK_FALSE(got.ok());
  CHECK(got.message() == "disk full");
  CHECK(store.jobs().empty());  // the remove still applied
}

TEST_CASE("memory store replays by id with the ceiling and removes applied", "[storage]") {
  MemoryStore store;
  store.Add(Record(9, "fn", "b"), [](const Status&) {});
  store.Add(Record(3, "fn", "a"), [](const Status&) {});
  store.Add(Record(5, "fn", "gone"), [](const Status&) {});
  store.Remove(5);
  store.SetHandleCeiling(4);
  store.Close();
  std::vector<uint64_t> ids;
  auto info = store.Replay([&](JobRecord&& r) { ids.push_back(r.id); });
  REQUIRE(info.ok());
  CHECK(ids == std::vector<uint64_t>{3, 9});
  CHECK(info.value().handle_ceiling == 10);
  CHECK(store.handle_ceiling() == 4);
}

TEST_CASE("memory store defers adds queued by a callback to the next commit", "[storage]") {
  MemoryStore store;
  bool second_done = false;
  store.Add(Record(1, "fn", "x"), [&](const Status&) {
    store.Add(Record(2, "fn", "y"), [&](const Status&) { second_done = true; });
  });
  CHECK(store.Commit() == 1);
  CHECK_FALSE(second_done);
  CHECK(store.Commit() == 1);
  CHECK(second_done);
}

}  // namespace
}  // namespace roundhouse::storage
