// The libuv loop that owns all server state (doc/design.md "Threads and flow").
//
// EventLoop owns a uv_loop_t. Handles live inside the objects that own them (connections,
// listeners, the server's timer and signal handles) and are freed only after their close
// callbacks ran, which is why the loop must outlive every handle owner: declare it first.
// The destructor runs the loop until every close callback has run and then closes it; a handle
// still open at that point is a bug, logged with its type and closed so the loop can be freed.
//
// Thread-safety: loop thread only.
#pragma once

#include <uv.h>

namespace roundhouse::server {

class EventLoop {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  uv_loop_t* get() { return &loop_; }

  // Runs until no active handle or request is left.
  void Run();

 private:
  uv_loop_t loop_{};
};

}  // namespace roundhouse::server
