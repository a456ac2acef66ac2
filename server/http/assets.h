// The dashboard's static files, embedded into the binary at build time by embed_assets.py
// (meson custom_target) from server/http/assets/. Served as-is by the status endpoint.
#pragma once

#include <span>
#include <string_view>

namespace roundhouse::server::http {

struct Asset {
  std::string_view path;          // URL path, e.g. "/" or "/dashboard.js"
  std::string_view content_type;  // e.g. "text/html; charset=utf-8"
  std::string_view body;          // static storage
};

std::span<const Asset> DashboardAssets();

}  // namespace roundhouse::server::http
