// Measurements, hidden from the default run (tag [.bench]); they print numbers and assert only
// that every add succeeded. Run: storage_unit_tests '[bench]'
// (The project keeps benchmarks in tools/; these live here until storage has a tools/ program.)
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "storage/sqlite_store.h"
#include "test/unit/storage/storage_test_util.h"

namespace roundhouse::storage {
namespace {

using testing::Loop;
using testing::OpenStore;
using testing::TempDir;

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// User + system CPU time of this process.
double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

JobRecord BenchRecord(uint64_t id) {
  JobRecord r;
  r.id = id;
  r.handle = "H:bench-host:" + std::to_string(id);
  r.function = "function-" + std::to_string(id % 16);
  char unique[40];
  std::snprintf(unique, sizeof unique, "%08llx-0000-4000-8000-%012llx",
                static_cast<unsigned long long>(id >> 32), static_cast<unsigned long long>(id));
  r.unique = unique;
  r.data = std::string(100, static_cast<char>('a' + id % 26));
  r.priority = static_cast<uint8_t>(id % 3);
  return r;
}

// `submitters` clients, each with `window` adds outstanding; a completion triggers that
// client's next add (and, with `remove_after`, the remove of a job added earlier, as workers
// finishing jobs would). Submitting stops after `seconds`; the run ends when all are answered.
struct LoadResult {
  uint64_t adds;
  double adds_per_second;
  double mean_batch;
};
LoadResult RunLoad(int submitters, int window, double seconds, bool remove_after) {
  TempDir dir;
  Loop loop;
  auto store = OpenStore(loop, dir.File("bench.db"));
  uint64_t next_id = 1;
  uint64_t completed = 0;
  uint64_t failures = 0;
  const auto start = Clock::now();
  const auto stop_at =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::function<void(const Status&)> on_done;
  auto submit = [&]() {
    const uint64_t id = next_id++;
    store->Add(BenchRecord(id), on_done);
    if (remove_after && id > 1000) store->Remove(id - 1000);
  };
  on_done = [&](const Status& s) {
    failures += !s.ok();
    ++completed;
    if (Clock::now() < stop_at) submit();
  };
  for (int i = 0; i < submitters * window; ++i) submit();
  loop.Run();
  const double secs = Seconds(start);
  CHECK(failures == 0);
  CHECK(completed == next_id - 1);
  const double batches = static_cast<double>(store->delivered_batches());
  return {completed, static_cast<double>(completed) / secs,
          static_cast<double>(completed) / batches};
}

// References measured in the same run and directory: raw fsync rate, and gearmand's libsqlite3
// pattern (rollback journal, synchronous=FULL, one INSERT OR REPLACE transaction per job).
void PrintReferences() {
  TempDir dir;
  const std::string probe = dir.File("fsync-probe");
  FILE* f = std::fopen(probe.c_str(), "w");
  REQUIRE(f != nullptr);
  const std::string page(4096, 'x');
  auto start = Clock::now();
  int n = 0;
  while (Seconds(start) < 1.0) {
    std::fwrite(page.data(), 1, page.size(), f);
    std::fflush(f);
    fsync(fileno(f));
    ++n;
  }
  std::fclose(f);
  std::printf("reference: append 4 KiB + fsync: %.0f/s\n", n / Seconds(start));

  testing::RawDb raw(dir.File("gearmand-style.db"));
  raw.Exec(
      "CREATE TABLE gearman_queue ( unique_key TEXT, function_name TEXT, priority INTEGER, "
      "data BLOB, when_to_run INTEGER, PRIMARY KEY (unique_key, function_name))");
  sqlite3_stmt* ins = nullptr;
  REQUIRE(sqlite3_prepare_v2(raw.get(),
                             "INSERT OR REPLACE INTO gearman_queue VALUES(?1, ?2, ?3, ?4, 0)", -1,
                             &ins, nullptr) == SQLITE_OK);
  start = Clock::now();
  n = 0;
  while (Seconds(start) < 1.0) {
    const JobRecord r = BenchRecord(static_cast<uint64_t>(++n));
    raw.Exec("BEGIN");
    sqlite3_bind_text(ins, 1, r.unique.data(), static_cast<int>(r.unique.size()), SQLITE_STATIC);
    sqlite3_bind_text(ins, 2, r.function.data(), static_cast<int>(r.function.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int(ins, 3, r.priority);
    sqlite3_bind_blob(ins, 4, r.data.data(), static_cast<int>(r.data.size()), SQLITE_STATIC);
    REQUIRE(sqlite3_step(ins) == SQLITE_DONE);
    sqlite3_reset(ins);
    raw.Exec("COMMIT");
  }
  sqlite3_finalize(ins);
  std::printf("reference: gearmand libsqlite3 pattern (one transaction per job): %.0f adds/s\n",
              n / Seconds(start));
}

TEST_CASE("bench: durable adds per second with concurrent submitters", "[.bench]") {
  PrintReferences();
  std::printf("roundhouse SqliteStore, WAL, synchronous=FULL, 100-byte payloads, ~2 s per row\n");
  for (int window : {1, 16}) {
    for (int submitters : {1, 4, 16, 64, 256}) {
      for (bool remove_after : {false, true}) {
        const LoadResult r = RunLoad(submitters, window, 2.0, remove_after);
        std::printf(
            "  submitters %4d x outstanding %3d%s: %8llu adds %9.0f adds/s  "
            "mean batch %7.1f\n",
            submitters, window, remove_after ? " + remove" : "         ",
            static_cast<unsigned long long>(r.adds), r.adds_per_second, r.mean_batch);
      }
    }
  }
  std::fflush(stdout);
}

TEST_CASE("bench: replay of one million stored jobs", "[.bench]") {
  TempDir dir;
  const std::string path = dir.File("replay.db");
  constexpr uint64_t kJobs = 1'000'000;
  {
    Loop loop;
    auto store = OpenStore(loop, path);
    const auto start = Clock::now();
    for (uint64_t id = 1; id <= kJobs; ++id) {
      store->Add(BenchRecord(id), [](const Status& s) { REQUIRE(s.ok()); });
      if (id % 50'000 == 0) loop.Run();
    }
    loop.Run();
    std::printf("stored %llu jobs in %.2f s\n", static_cast<unsigned long long>(kJobs),
                Seconds(start));
  }
  Loop loop;
  const double cpu_before = CpuSeconds();
  const auto start = Clock::now();
  auto store = OpenStore(loop, path);
  std::vector<JobRecord> jobs;
  jobs.reserve(kJobs);
  auto result = store->Replay([&](JobRecord&& r) { jobs.push_back(std::move(r)); });
  const double secs = Seconds(start);
  const double cpu = CpuSeconds() - cpu_before;
  REQUIRE(result.ok());
  CHECK(result.value().jobs == kJobs);
  CHECK(jobs.size() == kJobs);
  std::printf(
      "open + replay of %llu jobs (kept in a vector): %.3f s wall, %.3f s CPU "
      "(%.0f jobs/s wall)\n",
      static_cast<unsigned long long>(kJobs), secs, cpu, static_cast<double>(kJobs) / secs);
  std::fflush(stdout);
}

}  // namespace
}  // namespace roundhouse::storage
