// Private to config*.cc: the one option table. Every command-line option, config-file key and
// --help line comes from it, so parsing and help cannot drift apart.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "base/status.h"
#include "server/config.h"

namespace roundhouse::config_internal {

struct OptionSpec;

// One occurrence of an option, from the command line or a config file.
struct Setting {
  const OptionSpec* spec = nullptr;
  std::string value;    // options that take a value
  bool on = true;       // on/off options: false only from a file's `key = false`
  std::string display;  // as written: "--port", "-p", "@" or "port" (a file key)
  std::string where;    // "" for the command line, "<file>:<line>" for a file
};

// Facts handlers leave for the checks that need every option (ParseCommandLine).
struct ParseState {
  bool sqlite_db_given = false;     // --libsqlite3-db
  bool sqlite_requested = false;    // -q libsqlite3 / sqlite given explicitly
  std::string sqlite_requested_at;  // that setting's `where`
  bool http_port_given = false;     // --http-port (meaningful with -r http only)
};

using Handler = Status (*)(const Setting&, Config&, ParseState&);
using DefaultText = std::string (*)(const Config&);

enum class Group { kListen, kTls, kProcess, kBroker, kStorage, kJenkins, kHttp, kInfo, kRefused };

enum Flags : unsigned {
  kNoFlags = 0,
  kRepeatable = 1u << 0,  // may be given several times; command-line uses replace the file's
  kAccumulate = 1u << 1,  // may be given several times; file and command line both apply
  kCommandLineOnly = 1u << 2,
};

struct OptionSpec {
  std::string_view name;     // long name without "--"; also the config-file key
  char short_name;           // 0 = none
  std::string_view metavar;  // empty = an on/off option that takes no value
  Group group;
  unsigned flags;
  std::string_view help;
  Handler apply;
  DefaultText default_text;  // null = no "[default: ...]" in --help
};

// Every option, in --help order.
std::span<const OptionSpec> AllOptions();
const OptionSpec* FindLong(std::string_view name);
const OptionSpec* FindShort(char c);
// Non-empty when `name` (a long name) belongs to a gearmand queue plugin roundhouse does not
// have: the refusal message.
std::string ForeignPluginOption(std::string_view name);

// "<where>: <text>" for a file setting, `text` alone for the command line.
Status Fail(const Setting& s, const std::string& text);

}  // namespace roundhouse::config_internal
