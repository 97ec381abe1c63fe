#include "runtime/trainer/train_flags.h"

#include <functional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "common/status_macros.h"
#include "runtime/config/schema.h"
#include "runtime/trainer/config.h"

namespace anvil {
namespace {

using google::protobuf::FieldDescriptor;

// The flags that are not config: what they set in TrainArgs.
struct ExtraFlag {
  const char* name;
  const char* default_text;
  const char* help;
  bool is_bool;
  std::function<absl::Status(TrainArgs*, absl::string_view)> set;
};

absl::Status BadValue(absl::string_view name, absl::string_view value, absl::string_view type) {
  return absl::InvalidArgumentError(
      absl::StrCat("--", name, ": cannot parse '", value, "' as ", type));
}

const std::vector<ExtraFlag>& ExtraFlags() {
  static const auto* flags = new std::vector<ExtraFlag>{
      {"config", "", "Text-format TrainConfig file; flags given explicitly override it.", false,
       [](TrainArgs* a, absl::string_view v) {
         a->config_path = std::string(v);
         return absl::OkStatus();
       }},
      {"print_config", "false", "Print the resolved config and exit.", true,
       [](TrainArgs* a, absl::string_view v) {
         return absl::SimpleAtob(v, &a->print_config) ? absl::OkStatus()
                                                      : BadValue("print_config", v, "bool");
       }},
      {"dist_timeout_s", "300", "Seconds to wait for the store, the other ranks and every collective.",
       false,
       [](TrainArgs* a, absl::string_view v) {
         if (!absl::SimpleAtoi(v, &a->dist_timeout_s)) return BadValue("dist_timeout_s", v, "int32");
         if (a->dist_timeout_s <= 0) {
           return absl::InvalidArgumentError(
               absl::StrCat("--dist_timeout_s must be > 0, got ", a->dist_timeout_s));
         }
         return absl::OkStatus();
       }},
  };
  return *flags;
}

const ExtraFlag* FindExtraFlag(absl::string_view name) {
  for (const ExtraFlag& f : ExtraFlags()) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

// A named flag: either a schema leaf or an extra flag.
struct Named {
  const ConfigLeaf* leaf = nullptr;
  const ExtraFlag* extra = nullptr;
  bool is_bool() const {
    return extra != nullptr ? extra->is_bool
                            : leaf->field()->cpp_type() == FieldDescriptor::CPPTYPE_BOOL;
  }
};

Named Lookup(const std::string& name) {
  Named n;
  n.leaf = FindConfigLeaf(name);
  if (n.leaf == nullptr) n.extra = FindExtraFlag(name);
  return n;
}

absl::Status Set(const Named& n, TrainArgs* args, absl::string_view value) {
  if (n.extra != nullptr) return n.extra->set(args, value);
  return SetConfigLeaf(&args->flags, *n.leaf, value);
}

}  // namespace

absl::StatusOr<TrainArgs> ParseTrainArgs(const std::vector<std::string>& args) {
  TrainArgs out;
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view a = args[i];
    if (a == "--") {
      if (i + 1 < args.size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "unexpected argument '", args[i + 1], "' (train takes only --flags)"));
      }
      break;
    }
    if (a.size() < 2 || a[0] != '-') {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument '", a, "' (train takes only --flags)"));
    }
    a.remove_prefix(absl::StartsWith(a, "--") ? 2 : 1);
    const size_t eq = a.find('=');
    const std::string name = absl::StrReplaceAll(a.substr(0, eq), {{"-", "_"}});
    if (name.empty()) return absl::InvalidArgumentError(absl::StrCat("malformed flag '", args[i], "'"));
    if (name == "help" || name == "h") {
      if (eq != absl::string_view::npos && !absl::SimpleAtob(a.substr(eq + 1), &out.help)) {
        return BadValue(name, a.substr(eq + 1), "bool");
      }
      if (eq == absl::string_view::npos) out.help = true;
      continue;
    }
    Named n = Lookup(name);
    if (n.leaf == nullptr && n.extra == nullptr && name.starts_with("no")) {
      // --nox: a bool flag set to false.
      Named b = Lookup(name.substr(2));
      if ((b.leaf != nullptr || b.extra != nullptr) && b.is_bool()) {
        if (eq != absl::string_view::npos) {
          return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
        }
        RETURN_IF_ERROR(Set(b, &out, "false"));
        continue;
      }
    }
    if (n.leaf == nullptr && n.extra == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    std::string value;
    if (eq != absl::string_view::npos) {
      value = std::string(a.substr(eq + 1));
    } else if (n.is_bool()) {
      value = "true";
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
    }
    RETURN_IF_ERROR(Set(n, &out, value));
  }
  return out;
}

absl::StatusOr<proto::TrainConfig> ResolveTrainConfig(const TrainArgs& args) {
  proto::TrainConfig config = DefaultTrainConfig();
  if (!args.config_path.empty()) RETURN_IF_ERROR(MergeConfigFile(args.config_path, &config));
  config.MergeFrom(args.flags);
  return config;
}

std::string TrainUsage() {
  std::string out =
      "usage: train [--config FILE] [--flag=value ...]\n"
      "Every flag but the last group is a field of TrainConfig (proto/config.proto); a --config\n"
      "file (text format) sets the same fields and flags given on the command line win.\n";
  auto line = [&](const std::string& name, const std::string& def, const std::string& help) {
    absl::StrAppendFormat(&out, "  --%s (default: %s)\n      %s\n", name,
                          def.empty() ? "\"\"" : def, help);
  };
  std::string group;
  for (const ConfigLeaf& leaf : ConfigLeaves()) {
    if (leaf.group() != group) {
      group = leaf.group();
      absl::StrAppend(&out, "\n", group, ":\n");
    }
    std::string name = leaf.flag();
    for (const std::string& alias : leaf.spec().aliases()) absl::StrAppend(&name, ", --", alias);
    line(name, leaf.spec().default_value(), leaf.spec().help());
  }
  absl::StrAppend(&out, "\nnot config:\n");
  for (const ExtraFlag& f : ExtraFlags()) line(f.name, f.default_text, f.help);
  line("help, -h", "false", "Print this and exit.");
  return out;
}

}  // namespace anvil
