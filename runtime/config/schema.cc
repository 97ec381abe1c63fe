#include "runtime/config/schema.h"

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/text_format.h"

namespace anvil {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

void CollectLeaves(const Descriptor* d, std::vector<const FieldDescriptor*>* prefix,
                   std::vector<ConfigLeaf>* out) {
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    prefix->push_back(f);
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      CollectLeaves(f->message_type(), prefix, out);
    } else {
      out->push_back(ConfigLeaf{*prefix});
    }
    prefix->pop_back();
  }
}

std::string Normalize(absl::string_view name) { return absl::StrReplaceAll(name, {{"-", "_"}}); }

// The message holding the leaf, or null when a message above it is unset.
const Message* ParentIfSet(const proto::TrainConfig& config, const ConfigLeaf& leaf) {
  const Message* m = &config;
  for (size_t i = 0; i + 1 < leaf.path.size(); ++i) {
    if (!m->GetReflection()->HasField(*m, leaf.path[i])) return nullptr;
    m = &m->GetReflection()->GetMessage(*m, leaf.path[i]);
  }
  return m;
}

absl::Status BuildDefaults(proto::TrainConfig* config) {
  absl::Status first;
  for (const ConfigLeaf& leaf : ConfigLeaves()) {
    absl::Status s = SetConfigLeaf(config, leaf, leaf.spec().default_value());
    if (!s.ok() && first.ok()) {
      first = absl::InternalError(absl::StrCat("the schema's default for ", s.message()));
    }
  }
  return first;
}

}  // namespace

const proto::FieldSpec& ConfigLeaf::spec() const {
  return field()->options().GetExtension(proto::spec);
}

std::string ConfigLeaf::flag() const {
  const proto::FieldSpec& s = spec();
  return s.has_flag() ? s.flag() : field()->name();
}

std::string ConfigLeaf::group() const { return path.size() > 1 ? path.front()->name() : "run"; }

const std::vector<ConfigLeaf>& ConfigLeaves() {
  static const auto* leaves = [] {
    auto* v = new std::vector<ConfigLeaf>;
    std::vector<const FieldDescriptor*> prefix;
    CollectLeaves(proto::TrainConfig::descriptor(), &prefix, v);
    return v;
  }();
  return *leaves;
}

const ConfigLeaf* FindConfigLeaf(absl::string_view flag_name) {
  static const auto* by_name = [] {
    auto* m = new absl::flat_hash_map<std::string, const ConfigLeaf*>;
    for (const ConfigLeaf& leaf : ConfigLeaves()) {
      m->emplace(leaf.flag(), &leaf);
      for (const std::string& alias : leaf.spec().aliases()) m->emplace(alias, &leaf);
    }
    return m;
  }();
  auto it = by_name->find(Normalize(flag_name));
  return it == by_name->end() ? nullptr : it->second;
}

absl::Status SetConfigLeaf(proto::TrainConfig* config, const ConfigLeaf& leaf,
                           absl::string_view text) {
  Message* msg = config;
  for (size_t i = 0; i + 1 < leaf.path.size(); ++i) {
    msg = msg->GetReflection()->MutableMessage(msg, leaf.path[i]);
  }
  const FieldDescriptor* f = leaf.field();
  const Reflection* r = msg->GetReflection();
  auto bad = [&]() {
    return absl::InvalidArgumentError(
        absl::StrCat("--", leaf.flag(), ": cannot parse '", text, "' as ", f->type_name()));
  };
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t v;
      if (!absl::SimpleAtoi(text, &v)) return bad();
      r->SetInt32(msg, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t v;
      if (!absl::SimpleAtoi(text, &v)) return bad();
      r->SetInt64(msg, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t v;
      if (!absl::SimpleAtoi(text, &v)) return bad();
      r->SetUInt32(msg, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t v;
      if (!absl::SimpleAtoi(text, &v)) return bad();
      r->SetUInt64(msg, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_FLOAT: {
      float v;
      if (!absl::SimpleAtof(text, &v)) return bad();
      r->SetFloat(msg, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      double v;
      if (!absl::SimpleAtod(text, &v)) return bad();
      r->SetDouble(msg, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool v;
      if (!absl::SimpleAtob(text, &v)) return bad();
      r->SetBool(msg, f, v);
      break;
    }
    case FieldDescriptor::CPPTYPE_STRING:
      r->SetString(msg, f, std::string(text));
      break;
    default:
      return absl::InternalError(
          absl::StrCat("config field ", f->full_name(), " has a type flags cannot set"));
  }
  return absl::OkStatus();
}

bool HasConfigLeaf(const proto::TrainConfig& config, const ConfigLeaf& leaf) {
  const Message* parent = ParentIfSet(config, leaf);
  return parent != nullptr && parent->GetReflection()->HasField(*parent, leaf.field());
}

std::string EffectiveValueText(const proto::TrainConfig& config, const ConfigLeaf& leaf) {
  const proto::TrainConfig& from = HasConfigLeaf(config, leaf) ? config : DefaultTrainConfig();
  const Message* parent = ParentIfSet(from, leaf);
  std::string out;
  if (parent != nullptr) {
    google::protobuf::TextFormat::PrintFieldValueToString(*parent, leaf.field(), -1, &out);
  }
  return out;
}

absl::StatusOr<proto::TrainConfig> SchemaDefaults() {
  proto::TrainConfig config;
  absl::Status s = BuildDefaults(&config);
  if (!s.ok()) return s;
  return config;
}

const proto::TrainConfig& DefaultTrainConfig() {
  static const auto* defaults = [] {
    auto* c = new proto::TrainConfig;
    // A default that does not parse stays unset here; SchemaDefaults()
    // reports it, and the schema test fails on it.
    (void)BuildDefaults(c);
    return c;
  }();
  return *defaults;
}

}  // namespace anvil
