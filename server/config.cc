// Command line and config files (doc/protocol.md §5.1, §5.2). The option table is in
// config_options.cc; the lexical side of config files in config_file.cc.
//
// Precedence follows gearmand 1.1.20, which stores the command line first and then the config
// file into one boost::program_options variables_map, where the first stored value of an option
// wins: an option given on the command line ignores the file's value for it, wherever
// --config-file appears. Within one source an option may be given once (boost's
// "cannot be specified more than once"), except the repeatable ones (-L, --jenkins).
#include "server/config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "server/config_options.h"

namespace roundhouse {

using config_internal::AllOptions;
using config_internal::FindLong;
using config_internal::FindShort;
using config_internal::Group;
using config_internal::OptionSpec;
using config_internal::ParseState;
using config_internal::Setting;

namespace {

constexpr uint16_t kDefaultPort = 4730;

struct Token {
  std::string text;
  std::string where;  // "" for the command line, "<file>:<line>"
};

Status ErrorAt(const std::string& where, const std::string& text) {
  return Status::Error(where.empty() ? text : where + ": " + text);
}

bool TakesValue(const OptionSpec& o) { return !o.metavar.empty(); }

// gearmand (boost) takes the next token as an option's value unless that token is itself a
// known option, so `-j -1` works and `-p -d` is a missing value.
bool IsKnownOption(std::string_view t) {
  if (t.size() > 2 && t.substr(0, 2) == "--") {
    std::string_view name = t.substr(2);
    return FindLong(name.substr(0, name.find('='))) != nullptr;
  }
  return t.size() > 1 && t[0] == '-' && FindShort(t[1]) != nullptr;
}

Status UnknownLong(const std::string& where, std::string_view name) {
  std::string foreign = config_internal::ForeignPluginOption(name);
  if (!foreign.empty()) return ErrorAt(where, foreign);
  return ErrorAt(where, "unknown option '--" + std::string(name) + "'");
}

// Turns argv-style tokens (the command line, or a gearmand-format file) into settings.
Status TokensToSettings(const std::vector<Token>& tokens, bool from_file,
                        std::vector<Setting>* out) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& t = tokens[i].text;
    const std::string& where = tokens[i].where;
    auto value_from_next = [&](const OptionSpec& spec, const std::string& display,
                               std::string* value) -> Status {
      if (i + 1 < tokens.size() && !IsKnownOption(tokens[i + 1].text)) {
        *value = tokens[++i].text;
        return Status::Ok();
      }
      std::string text = "option " + display + " requires a value (";
      text += display;
      text += ' ';
      text += spec.metavar;
      text += ')';
      return ErrorAt(where, text);
    };

    if (t.size() > 2 && t.substr(0, 2) == "--") {
      std::string_view body = std::string_view(t).substr(2);
      size_t eq = body.find('=');
      std::string_view name = body.substr(0, eq);
      const OptionSpec* spec = FindLong(name);
      if (spec == nullptr) return UnknownLong(where, name);
      Setting s{spec, {}, true, "--" + std::string(name), where};
      if (!TakesValue(*spec)) {
        if (eq != std::string_view::npos) {
          return ErrorAt(where, "option " + s.display + " does not take a value");
        }
      } else if (eq != std::string_view::npos) {
        s.value = std::string(body.substr(eq + 1));
      } else {
        Status st = value_from_next(*spec, s.display, &s.value);
        if (!st.ok()) return st;
      }
      out->push_back(std::move(s));
    } else if (t.size() > 1 && t[0] == '-' && t[1] != '-') {
      // -p4730, -p 4730, and grouped switches (-dR) as boost's allow_sticky permits.
      for (size_t j = 1; j < t.size(); ++j) {
        if (t[j] == 'v') {
          return ErrorAt(where, "Option -v has been deprecated, please use --verbose");
        }
        const OptionSpec* spec = FindShort(t[j]);
        if (spec == nullptr) {
          return ErrorAt(where, "unknown option '-" + std::string(1, t[j]) + "'");
        }
        Setting s{spec, {}, true, "-" + std::string(1, t[j]), where};
        if (!TakesValue(*spec)) {
          out->push_back(std::move(s));
          continue;
        }
        if (j + 1 < t.size()) {
          s.value = t.substr(j + 1);
        } else {
          Status st = value_from_next(*spec, s.display, &s.value);
          if (!st.ok()) return st;
        }
        out->push_back(std::move(s));
        break;
      }
    } else if (!from_file && t.size() > 1 && t[0] == '@') {
      out->push_back({FindLong("config-file"), t.substr(1), true, "@", where});
    } else {
      return ErrorAt(where, "unexpected argument '" + t + "'");
    }
  }
  return Status::Ok();
}

bool ParseOnOff(std::string_view v, bool* on) {
  static constexpr std::string_view kOn[] = {"true", "yes", "on", "1"};
  static constexpr std::string_view kOff[] = {"false", "no", "off", "0"};
  for (auto w : kOn) {
    if (v == w) {
      *on = true;
      return true;
    }
  }
  for (auto w : kOff) {
    if (v == w) {
      *on = false;
      return true;
    }
  }
  return false;
}

// Format (b) lines to settings.
Status EntriesToSettings(const ConfigText& text, const std::string& file,
                         std::vector<Setting>* out) {
  for (const ConfigText::Entry& e : text.entries) {
    std::string where = file + ":" + std::to_string(e.line);
    const OptionSpec* spec = FindLong(e.key);
    if (spec == nullptr) {
      std::string foreign = config_internal::ForeignPluginOption(e.key);
      if (!foreign.empty()) return ErrorAt(where, foreign);
      return ErrorAt(where, "unknown key '" + e.key + "'");
    }
    Setting s{spec, e.value, true, e.key, where};
    if (!TakesValue(*spec)) {
      if (e.has_value && !ParseOnOff(e.value, &s.on)) {
        return ErrorAt(where, "'" + e.key +
                                  "' is on or off: expected true, false, yes, no, on, "
                                  "off, 1 or 0, got '" +
                                  e.value + "'");
      }
      s.value.clear();
    } else if (!e.has_value) {
      return ErrorAt(where, "'" + e.key + "' needs a value (" + e.key + " = " +
                                std::string(spec->metavar) + ")");
    }
    out->push_back(std::move(s));
  }
  return Status::Ok();
}

// One source may set a non-repeatable option once.
Status CheckOnce(const std::vector<Setting>& settings) {
  std::set<const OptionSpec*> seen;
  for (const Setting& s : settings) {
    if (s.spec->flags & (config_internal::kRepeatable | config_internal::kAccumulate)) continue;
    if (!seen.insert(s.spec).second) {
      return ErrorAt(s.where, "option '--" + std::string(s.spec->name) +
                                  "' cannot be specified more than once");
    }
  }
  return Status::Ok();
}

Result<std::string> ReadFile(const std::string& path, bool must_exist, bool* found) {
  *found = false;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    // The default file may be absent; any other failure is reported (gearmand silently skips an
    // unreadable default file, which hides a broken installation).
    if (!must_exist && (errno == ENOENT || errno == ENOTDIR)) return std::string();
    return Status::Error("cannot read config file '" + path + "': " + strerror(errno));
  }
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status st = Status::Error("cannot read config file '" + path + "': " + strerror(errno));
      close(fd);
      return st;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  *found = true;
  return text;
}

Status LoadConfigFile(const std::string& path, bool must_exist, std::vector<Setting>* settings,
                      std::vector<JenkinsMasterConfig>* sections,
                      std::vector<acl::SectionText>* acl_sections) {
  bool found = false;
  Result<std::string> text = ReadFile(path, must_exist, &found);
  if (!text.ok()) return text.status();
  if (!found) return Status::Ok();
  Result<ConfigText> split = SplitConfigText(text.value(), path);
  if (!split.ok()) return split.status();
  const ConfigText& ct = split.value();
  if (ct.option_tokens) {
    std::vector<Token> tokens;
    tokens.reserve(ct.tokens.size());
    for (const auto& t : ct.tokens) tokens.push_back({t.text, path + ":" + std::to_string(t.line)});
    Status st = TokensToSettings(tokens, /*from_file=*/true, settings);
    if (!st.ok()) return st;
  } else {
    Status st = EntriesToSettings(ct, path, settings);
    if (!st.ok()) return st;
  }
  for (const Setting& s : *settings) {
    if (s.spec->flags & config_internal::kCommandLineOnly) {
      return ErrorAt(s.where, "option '--" + std::string(s.spec->name) +
                                  "' is only allowed on the command line");
    }
  }
  *sections = ct.jenkins;
  *acl_sections = ct.acl;
  return Status::Ok();
}

Status CheckJenkinsNames(const std::vector<JenkinsMasterConfig>& masters) {
  for (size_t i = 0; i < masters.size(); ++i) {
    if (masters[i].name.empty()) {
      return Status::Error(masters[i].origin + ": empty jenkins master name");
    }
    for (size_t j = 0; j < i; ++j) {
      if (masters[j].name == masters[i].name) {
        return Status::Error(masters[i].origin + ": duplicate jenkins master '" + masters[i].name +
                             "' (first defined at " + masters[j].origin + ")");
      }
    }
  }
  return Status::Ok();
}

std::string Nodename() {
  utsname u{};
  if (uname(&u) != 0) return "localhost";
  return u.nodename;
}

// Appends `text` wrapped at `width` columns, continuation lines indented by `indent`.
void AppendWrapped(std::string_view text, size_t column, size_t indent, size_t width,
                   std::string* out) {
  while (!text.empty()) {
    size_t room = width > column ? width - column : 20;
    std::string_view piece = text;
    if (piece.size() > room) {
      size_t cut = piece.rfind(' ', room);
      if (cut == std::string_view::npos || cut == 0) cut = piece.find(' ');
      piece = piece.substr(0, cut);
    }
    for (char c : piece) out->push_back(c == '\x01' ? ' ' : c);
    text.remove_prefix(piece.size());
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    if (!text.empty()) {
      out->push_back('\n');
      out->append(indent, ' ');
      column = indent;
    }
  }
  out->push_back('\n');
}

std::string_view GroupTitle(Group g) {
  switch (g) {
    case Group::kListen:
      return "Listening";
    case Group::kTls:
      return "TLS (doc/protocol.md §5.5)";
    case Group::kProcess:
      return "Process";
    case Group::kBroker:
      return "Jobs and workers";
    case Group::kStorage:
      return "Durable queue";
    case Group::kJenkins:
      return "Jenkins masters";
    case Group::kHttp:
      return "HTTP: gearmand's HTTP protocol and the status API";
    case Group::kInfo:
      return "Information";
    case Group::kRefused:
      return "gearmand options refused at start-up";
  }
  return "";
}

}  // namespace

std::string DefaultHandlePrefix(std::string_view nodename) {
  return "H:" + std::string(nodename.substr(0, kMaxHandlePrefix - 2));
}

Result<Config> ParseCommandLine(int argc, const char* const* argv, const std::string& env_port) {
  ParseEnv env;
  env.gearmand_port = env_port;
  return ParseCommandLine(argc, argv, env);
}

Result<Config> ParseCommandLine(int argc, const char* const* argv, const ParseEnv& env) {
  std::vector<Token> tokens;
  for (int i = 1; i < argc; ++i) tokens.push_back({argv[i], ""});

  std::vector<Setting> cli;
  Status st = TokensToSettings(tokens, /*from_file=*/false, &cli);
  if (!st.ok()) return st;
  st = CheckOnce(cli);
  if (!st.ok()) return st;

  // Which file: the command line's --config-file / @PATH, else the default.
  std::string file = env.default_config_file;
  bool explicit_file = false;
  for (const Setting& s : cli) {
    if (s.spec->name == "config-file") {
      if (s.value.empty()) return ErrorAt(s.where, "option " + s.display + " needs a file name");
      file = s.value;
      explicit_file = true;
    }
  }

  std::vector<Setting> from_file;
  std::vector<JenkinsMasterConfig> sections;
  std::vector<acl::SectionText> acl_sections;
  if (!file.empty()) {  // ParseEnv may disable the default file
    st = LoadConfigFile(file, explicit_file, &from_file, &sections, &acl_sections);
    if (!st.ok()) return st;
    st = CheckOnce(from_file);
    if (!st.ok()) return st;
  }

  Config config;
  ParseState state;
  config.jenkins = std::move(sections);
  std::set<const OptionSpec*> on_command_line;
  for (const Setting& s : cli) on_command_line.insert(s.spec);
  for (const Setting& s : from_file) {
    bool overridden =
        on_command_line.count(s.spec) != 0 && !(s.spec->flags & config_internal::kAccumulate);
    if (overridden) continue;
    st = s.spec->apply(s, config, state);
    if (!st.ok()) return st;
  }
  for (const Setting& s : cli) {
    st = s.spec->apply(s, config, state);
    if (!st.ok()) return st;
  }

  // gearmand compares the port *value* with the default, so even an explicit `-p 4730` yields
  // to GEARMAND_PORT.
  if (config.port == kDefaultPort && !env.gearmand_port.empty()) {
    Setting s{FindLong("port"), env.gearmand_port, true, "GEARMAND_PORT", ""};
    Config scratch;
    ParseState unused;
    st = s.spec->apply(s, scratch, unused);
    if (!st.ok()) return st;
    config.port = scratch.port;
  }
  if (state.sqlite_requested && !state.sqlite_db_given) {
    return ErrorAt(state.sqlite_requested_at, "missing required --libsqlite3-db=<dbfile> argument");
  }
  if (state.http_port_given && !config.http_protocol) {
    config.warnings.push_back(
        "--http-port has no effect without -r http (gearmand's HTTP protocol), as in gearmand; "
        "roundhouse's status API and dashboard are enabled with --status-port");
  }
  if (config.ssl_require && !config.ssl) {
    return Status::Error("--ssl-require needs --ssl (TLS on the Gearman port)");
  }
  if (!config.ssl_require_listen.empty() && !config.ssl) {
    return Status::Error("--ssl-require-listen needs --ssl (TLS on the Gearman port)");
  }
  st = CheckJenkinsNames(config.jenkins);
  if (!st.ok()) return st;
  if (!acl_sections.empty()) {
    Result<acl::Table> table = acl::Table::Parse(acl_sections);
    if (!table.ok()) return table.status();
    config.acl = std::make_shared<const acl::Table>(std::move(table).value());
  }
  if (!config.status_token_file.empty() && !config.status_token_env.empty()) {
    return Status::Error("--status-token-file and --status-token-env are exclusive: give one");
  }
  if (config.broker.handle_prefix.empty()) {
    config.broker.handle_prefix =
        DefaultHandlePrefix(env.nodename.empty() ? Nodename() : env.nodename);
  }
  config.broker.max_unique = config.limits.max_unique;
  return config;
}

std::string UsageText() {
  constexpr size_t kHelpColumn = 32;
  constexpr size_t kWidth = 100;
  const Config defaults;
  std::string out =
      "Usage: roundhouse [OPTIONS]\n"
      "\n"
      "A Gearman job server that accepts gearmand 1.1.20's options. Values are given as\n"
      "--name=value, --name value, -xVALUE or -x VALUE; switches may be grouped (-dR). Long\n"
      "names are never abbreviated.\n";
  Group group = Group::kRefused;
  bool first = true;
  for (const OptionSpec& o : AllOptions()) {
    if (first || o.group != group) {
      out += "\n";
      out += GroupTitle(o.group);
      out += ":\n";
      group = o.group;
      first = false;
    }
    std::string left = "  ";
    left += o.short_name ? std::string("-") + o.short_name + ", " : std::string("    ");
    left += "--";
    left += o.name;
    if (!o.metavar.empty()) {
      left += " ";
      left += o.metavar;
    }
    out += left;
    size_t column = left.size();
    if (column + 2 > kHelpColumn) {
      out += "\n";
      column = 0;
    }
    out.append(kHelpColumn - column, ' ');
    std::string help(o.help);
    // '\x01' is a space the wrapper must not break at, so "[default: X]" stays on one line.
    if (o.default_text != nullptr) help += " [default:\x01" + o.default_text(defaults) + "]";
    AppendWrapped(help, kHelpColumn, kHelpColumn, kWidth, &out);
  }
  out +=
      "\n"
      "Config files (--config-file PATH, @PATH, default /etc/gearmand.conf) come in two formats,\n"
      "told apart by the first line that is neither blank nor a '#' comment:\n"
      "  gearmand's, when that line starts with '-': option tokens separated by spaces and\n"
      "    newlines, e.g. --port=4730 --verbose=INFO ('#' starts a comment to the end of line);\n"
      "  roundhouse's otherwise: one 'key = value' per line, keys being the long option names\n"
      "    (port = 4731, queue-type = sqlite), a bare key or 'key = true|false' for switches,\n"
      "    whole-line '#' comments, [jenkins NAME] sections whose 'key = value' lines are\n"
      "    that master's settings (base_url, user, api_token_file, ...), and [acl IDENTITY]\n"
      "    sections that turn access control on (doc/acl.md): IDENTITY is default,\n"
      "    loopback-plain, plain, loopback-tls, tls or CN=<client certificate CN>; keys\n"
      "    submit = PATTERNS, register = PATTERNS (globs such as build:*), admin =\n"
      "    read,control,operator.\n"
      "Options given on the command line take precedence over the file's, as in gearmand.\n"
      "\n"
      "Signals: SIGTERM/SIGINT stop at once, SIGUSR1 stops gracefully (after the queue drains),\n"
      "SIGHUP reopens the log file.\n";
  return out;
}


namespace {

// Text for roff: backslashes doubled as \e, '-' as \- (so options copy and paste), and a line
// starting with '.' or '\'' protected with \&.
std::string Roff(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else if (c == '\x01') {
      out += ' ';
    } else {
      out.push_back(c);
    }
    if (c == '\n') out += "\\&";
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out.insert(0, "\\&");
  return out;
}

}  // namespace

std::string ManPageText() {
  const Config defaults;
  std::string out;
  out += ".\\\" Generated from server/config_options.cc by server/man_page.cc; do not edit.\n";
  out += ".TH ROUNDHOUSE 8 \"\" \"roundhouse " ROUNDHOUSE_VERSION "\" \"System Administration\"\n";
  out += ".SH NAME\n";
  out += "roundhouse \\- Gearman job server with durable SQLite queue and Jenkins adapters\n";
  out += ".SH SYNOPSIS\n";
  out += ".B roundhouse\n";
  out += "[\\fIOPTIONS\\fR]\n";
  out += ".SH DESCRIPTION\n";
  out += Roff(
      "roundhouse is a Gearman job server that clients, workers and admin tools written for "
      "gearmand 1.1.20 use unchanged: same port (4730), same packets, same admin text protocol, "
      "and it accepts gearmand's command-line options. Background jobs are committed to an "
      "SQLite database before they are acknowledged. Registered Jenkins masters are served "
      "without any plugin: their executors appear as workers for build:JOB functions.");
  out += "\n.PP\n";
  out += Roff(
      "Values are given as --name=value, --name value, -xVALUE or -x VALUE; switches may be "
      "grouped (-dR). Long names are never abbreviated. Every long option is also a key of a "
      "roundhouse config file (see CONFIGURATION FILES).");
  out += "\n.SH OPTIONS\n";
  Group group = Group::kRefused;
  bool first = true;
  for (const OptionSpec& o : AllOptions()) {
    if (first || o.group != group) {
      out += ".SS ";
      out += Roff(GroupTitle(o.group));
      out += "\n";
      group = o.group;
      first = false;
    }
    out += ".TP\n";
    if (o.short_name != 0) {
      out += "\\fB\\-";
      out.push_back(o.short_name);
      out += "\\fR, ";
    }
    out += "\\fB\\-\\-" + Roff(o.name) + "\\fR";
    if (!o.metavar.empty()) out += " \\fI" + Roff(o.metavar) + "\\fR";
    out += "\n";
    std::string help(o.help);
    if (o.default_text != nullptr) help += " Default: " + o.default_text(defaults) + ".";
    out += Roff(help);
    out += "\n";
  }
  out += ".SH CONFIGURATION FILES\n";
  out += Roff(
      "--config-file PATH (or @PATH) reads options from a file; without it /etc/gearmand.conf is "
      "read if it exists. The format is told apart by the first line that is neither blank nor "
      "a '#' comment: gearmand's, when that line starts with '-' (option tokens separated by "
      "spaces and newlines, e.g. --port=4730 --verbose=INFO); roundhouse's otherwise: one "
      "'key = value' per line, keys being the long option names, a bare key or 'key = "
      "true|false' for switches, whole-line '#' comments, [jenkins NAME] sections whose "
      "'key = value' lines are that master's settings, and [acl IDENTITY] sections that turn "
      "access control on: IDENTITY is default, loopback-plain, plain, loopback-tls, tls or "
      "CN=<client certificate common name>, with the keys submit and register (function "
      "patterns such as build:*) and admin (read, control, operator or all); see doc/acl.md. "
      "Options on the command line take "
      "precedence over the file's.");
  out += "\n.SH SIGNALS\n";
  out += Roff(
      "SIGTERM and SIGINT stop at once (background jobs are already durable); SIGUSR1 stops "
      "gracefully, once no job is queued or running (a second SIGTERM, SIGINT or admin "
      "'shutdown' forces the exit); SIGHUP reopens the log file.");
  out += "\n.SH FILES\n";
  out += ".TP\n/etc/roundhouse/roundhouse.conf\n";
  out += Roff("The configuration the Debian package's systemd unit passes with --config-file.");
  out += "\n.TP\n/var/lib/roundhouse/roundhouse.db\n";
  out += Roff("The durable queue of the packaged service (its StateDirectory).");
  out += "\n.SH SEE ALSO\n";
  out += "\\fBgearadmin\\fR(1), \\fBgearman\\fR(1), \\fBgearmand\\fR(8), "
         "\\fBsystemctl\\fR(1), \\fBjournalctl\\fR(1)\n";
  out += ".PP\n";
  out += Roff(
      "The contracts and guides are in the source tree: doc/protocol.md, doc/jenkins.md, "
      "doc/migration.md; the Debian package installs them under /usr/share/doc/roundhouse.");
  out += "\n";
  return out;
}

}  // namespace roundhouse
