#include "server/event_loop.h"

#include <cstdlib>

#include "base/log.h"

namespace roundhouse::server {

EventLoop::EventLoop() {
  const int rc = uv_loop_init(&loop_);
  if (rc != 0) {
    // Only fails when the process is out of memory or file descriptors at start-up.
    RH_LOG(kFatal, "uv_loop_init: %s", uv_strerror(rc));
    std::abort();
  }
}

EventLoop::~EventLoop() {
  uv_run(&loop_, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop_) == UV_EBUSY) {
    uv_walk(
        &loop_,
        [](uv_handle_t* handle, void*) {
          if (uv_is_closing(handle)) return;
          RH_LOG(kError, "handle of type %s still open at exit",
                 uv_handle_type_name(uv_handle_get_type(handle)));
          uv_close(handle, nullptr);
        },
        nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    (void)uv_loop_close(&loop_);
  }
}

void EventLoop::Run() { uv_run(&loop_, UV_RUN_DEFAULT); }

}  // namespace roundhouse::server
