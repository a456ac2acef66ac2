// The Gearman-facing job contract: see job_contract.h. Every RapidJSON access below is preceded
// by a type check, so no RapidJSON assertion is reachable from a client's bytes. Documents are
// parsed by ParseJsonObject (json_document.h): UTF-8 validated, nesting depth capped, iterative
// parser.
#include "jenkins/job_contract.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <unordered_map>

#include "base/text.h"
#include "jenkins/json_document.h"

namespace roundhouse::jenkins {
namespace {

using rapidjson::Value;

// Appends `s` as a JSON string literal: `"` and `\` escaped, control bytes as \n, \t, ... or
// \u00XX, non-ASCII kept as UTF-8; a byte that does not start a well-formed UTF-8 sequence
// becomes U+FFFD so that the output is always valid JSON.
void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        out->append("\xEF\xBF\xBD");
        ++i;
      } else {
        out->append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

// A positive build number from a JSON integer or a decimal string.
std::optional<int64_t> BuildNumber(const Value& v) {
  if (v.IsInt64()) {
    return v.GetInt64() > 0 ? std::optional<int64_t>(v.GetInt64()) : std::nullopt;
  }
  if (!v.IsString()) return std::nullopt;
  const std::optional<int64_t> n =
      ParseDecimal<int64_t>(std::string_view(v.GetString(), v.GetStringLength()));
  return n && *n > 0 ? n : std::nullopt;
}

// The `name` and `number` shared by §1.7 and §1.8.
Status ParseNameAndNumber(const rapidjson::Document& doc, std::string_view what, std::string* name,
                          int64_t* number) {
  std::optional<std::string> n = OptionalMember<std::string>(doc, "name");
  if (!n || n->empty()) return Status::Error(std::string(what) + ": missing or empty name");
  const Value* num = Member(doc, "number");
  if (num == nullptr) return Status::Error(std::string(what) + ": missing number");
  std::optional<int64_t> parsed = BuildNumber(*num);
  if (!parsed) return Status::Error(std::string(what) + ": number is not a positive integer");
  *name = std::move(*n);
  *number = *parsed;
  return Status::Ok();
}

}  // namespace

const std::string* BuildArguments::Find(std::string_view key) const {
  for (const auto& [name, value] : parameters) {
    if (name == key) return &value;
  }
  return nullptr;
}

Result<BuildArguments> ParseBuildArguments(std::string_view data) {
  BuildArguments args;
  if (data.empty()) return args;
  rapidjson::Document doc;
  Status st = ParseJsonObject(data, "arguments", &doc, {.numbers_as_strings = true});
  if (!st.ok()) return st;
  // Slots in first-occurrence order; a key whose last value is null has no value.
  std::vector<std::pair<std::string, std::optional<std::string>>> slots;
  std::unordered_map<std::string, size_t> index;
  // Through a const reference: const member iterators compare unambiguously under clang's C++20
  // rewritten-operator rules (the non-const ones do not).
  const rapidjson::Document& object = doc;
  for (const auto& member : object.GetObject()) {
    // Keys are always strings in a parsed document.
    std::string key = Text(member.name);
    const Value& v = member.value;
    std::optional<std::string> text;
    if (v.IsString()) {  // strings and, with kParseNumbersAsStringsFlag, numbers
      text = Text(v);
    } else if (v.IsBool()) {
      text = v.GetBool() ? "true" : "false";
    } else if (!v.IsNull()) {
      return Status::Error("argument '" + ErrorExcerpt(key) + "' is " +
                           (v.IsObject() ? "an object" : "an array") +
                           "; only strings, numbers, booleans and null are allowed");
    }
    auto [it, inserted] = index.try_emplace(key, slots.size());
    if (inserted) {
      slots.emplace_back(std::move(key), std::move(text));
    } else {
      slots[it->second].second = std::move(text);
    }
  }
  for (auto& [key, value] : slots) {
    if (value) args.parameters.emplace_back(std::move(key), std::move(*value));
  }
  if (const std::string* offline = args.Find("OFFLINE_NODE_WHEN_COMPLETE")) {
    args.offline_node_when_complete =
        *offline == "1" || *offline == "true" || *offline == "True" || *offline == "TRUE";
  }
  return args;
}

FilteredParameters FilterParameters(
    const BuildArguments& arguments, const JobInfo& job,
    const std::vector<std::pair<std::string, std::string>>& overrides) {
  FilteredParameters out;
  auto is_override = [&overrides](const std::string& key) {
    return std::any_of(overrides.begin(), overrides.end(),
                       [&key](const auto& o) { return o.first == key; });
  };
  for (const auto& [key, value] : arguments.parameters) {
    if (job.FindParameter(key) == nullptr) {
      out.dropped.push_back(key);
    } else if (is_override(key)) {
      out.overridden.push_back(key);
    } else {
      out.sent.emplace_back(key, value);
    }
  }
  for (const auto& [key, value] : overrides) {
    if (job.FindParameter(key) == nullptr) continue;
    // A repeated override name: the later one wins.
    const std::string& name = key;  // a structured binding cannot be captured before clang 16
    std::erase_if(out.sent, [&name](const auto& p) { return p.first == name; });
    out.sent.emplace_back(key, value);
  }
  return out;
}

namespace {

void AppendStartFields(const StartInfo& info, std::string* out) {
  out->append("{\"name\":");
  AppendJsonString(info.name, out);
  out->append(",\"number\":");
  out->append(std::to_string(info.number));
  out->append(",\"manager\":");
  AppendJsonString(info.manager, out);
  out->append(",\"worker\":");
  AppendJsonString(info.worker, out);
  out->append(",\"url\":");
  AppendJsonString(info.url, out);
  if (info.node_known) {
    out->append(",\"node_name\":");
    AppendJsonString(info.node_name, out);
    std::vector<std::string> labels = info.node_labels;
    std::sort(labels.begin(), labels.end());
    labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
    out->append(",\"node_labels\":[");
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) out->push_back(',');
      AppendJsonString(labels[i], out);
    }
    out->push_back(']');
  }
  if (info.emit_worker_fields) {
    out->append(",\"worker_name\":");
    AppendJsonString(info.worker, out);
    out->append(",\"worker_hostname\":");
    AppendJsonString(info.worker_hostname, out);
    out->append(",\"worker_program\":\"Jenkins\",\"worker_version\":");
    AppendJsonString(info.worker_version, out);
  }
}

}  // namespace

std::string StartJson(const StartInfo& info) {
  std::string out;
  AppendStartFields(info, &out);
  out.push_back('}');
  return out;
}

std::string FinalJson(const StartInfo& info, std::string_view result) {
  std::string out;
  AppendStartFields(info, &out);
  out.append(",\"result\":");
  AppendJsonString(result, &out);
  out.push_back('}');
  return out;
}

Result<StopArguments> ParseStopArguments(std::string_view data) {
  rapidjson::Document doc;
  Status st = ParseJsonObject(data, "stop arguments", &doc);
  if (!st.ok()) return st;
  StopArguments args;
  st = ParseNameAndNumber(doc, "stop arguments", &args.name, &args.number);
  if (!st.ok()) return st;
  return args;
}

Result<DescriptionArguments> ParseDescriptionArguments(std::string_view data) {
  rapidjson::Document doc;
  Status st = ParseJsonObject(data, "set_description arguments", &doc);
  if (!st.ok()) return st;
  DescriptionArguments args;
  st = ParseNameAndNumber(doc, "set_description arguments", &args.name, &args.number);
  if (!st.ok()) return st;
  std::optional<std::string> description = OptionalMember<std::string>(doc, "html_description");
  if (!description) return Status::Error("set_description arguments: missing html_description");
  args.html_description = std::move(*description);
  return args;
}

}  // namespace roundhouse::jenkins
