// The config schema (proto/config.proto + runtime/config/schema.h): every
// leaf declares a default, help and both policies (a new field without them
// fails here); DefaultTrainConfig() keeps the defaults `train` had as
// flags; train's generated flags parse like Abseil's; the rank and resume
// policies decide what CheckSameConfig and CheckResumeConfig accept.
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "runtime/checkpoint/config_compat.h"
#include "runtime/config/schema.h"
#include "runtime/store/hash_store.h"
#include "runtime/trainer/config.h"
#include "runtime/trainer/distributed.h"
#include "runtime/trainer/train_flags.h"

namespace anvil {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::util::MessageDifferencer;

// Leaf fields found by walking the descriptor directly, not through
// ConfigLeaves(), so a walk that skipped a field would show.
void Walk(const Descriptor* d, std::vector<const FieldDescriptor*>* out) {
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      Walk(f->message_type(), out);
    } else {
      out->push_back(f);
    }
  }
}

TEST(SchemaTest, EveryLeafDeclaresDefaultHelpAndBothPolicies) {
  std::vector<const FieldDescriptor*> fields;
  Walk(proto::TrainConfig::descriptor(), &fields);
  ASSERT_EQ(fields.size(), ConfigLeaves().size());
  absl::flat_hash_set<std::string> names = {"config", "print_config", "dist_timeout_s", "help",
                                            "h"};
  for (size_t i = 0; i < fields.size(); ++i) {
    const ConfigLeaf& leaf = ConfigLeaves()[i];
    const std::string what = fields[i]->full_name();
    ASSERT_EQ(leaf.field(), fields[i]) << what;
    EXPECT_TRUE(fields[i]->has_presence()) << what << ": make it `optional` (a file may set 0)";
    EXPECT_FALSE(fields[i]->is_repeated()) << what;
    const proto::FieldSpec& spec = leaf.spec();
    EXPECT_TRUE(spec.has_default_value()) << what << " has no (spec).default_value";
    EXPECT_FALSE(spec.help().empty()) << what << " has no (spec).help";
    EXPECT_NE(spec.ranks(), proto::RANKS_UNSPECIFIED) << what << " has no (spec).ranks";
    EXPECT_NE(spec.resume(), proto::RESUME_UNSPECIFIED) << what << " has no (spec).resume";
    proto::TrainConfig c;
    EXPECT_TRUE(SetConfigLeaf(&c, leaf, spec.default_value()).ok())
        << what << ": default '" << spec.default_value() << "' does not parse";
    EXPECT_TRUE(names.insert(leaf.flag()).second) << "flag --" << leaf.flag() << " is taken twice";
    for (const std::string& alias : spec.aliases()) {
      EXPECT_TRUE(names.insert(alias).second) << "alias --" << alias << " is taken twice";
    }
    EXPECT_EQ(FindConfigLeaf(leaf.flag()), &leaf) << what;
  }
}

TEST(SchemaTest, DefaultTrainConfigSetsEveryLeafToTheFlagDefaultsTrainHad) {
  absl::StatusOr<proto::TrainConfig> built = SchemaDefaults();
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*built, DefaultTrainConfig()));
  for (const ConfigLeaf& leaf : ConfigLeaves()) {
    EXPECT_TRUE(HasConfigLeaf(DefaultTrainConfig(), leaf)) << leaf.flag();
  }
  // The ABSL_FLAG defaults of train_main.cc before the schema held them,
  // plus the model, image-data and diffusion fields added since: nothing
  // changed meaning.
  proto::TrainConfig before;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(R"pb(
    model { kind: "gpt" n_layer: 4 n_head: 4 n_embd: 128 max_seq_len: 128 vocab_size: 256
            n_kv_head: 0 ffn_hidden: 0 rope_theta: 10000 norm_eps: 1e-5 tie_embeddings: true
            image_size: 28 image_channels: 1 image_classes: 10 norm_groups: 8
            unet_channels: 32 unet_channel_mult: "1,2,2" unet_blocks: 1
            unet_attention_res: "7"
            patch_size: 4 learned_pos: false unet_dropout: 0 }
    data { train_pattern: "data/licenses/train_*.bin" val_pattern: "data/licenses/val_*.bin"
           batch_size: 16 seq_len: 128 train_images: "" train_labels: "" val_images: ""
           val_labels: "" image_root: "" val_image_root: "" image_pad: 0 hflip: false }
    diffusion { schedule: "linear" timesteps: 1000 prediction: "eps" label_dropout: 0.1
                num_classes: -1 sample_every: 0 }
    optim { lr: 3e-3 min_lr_ratio: 0.1 warmup_steps: 20 weight_decay: 0.1 beta1: 0.9
            beta2: 0.95 eps: 1e-8 grad_clip: 1 ema_decay: 0.999 }
    steps: 1000 grad_accum: 1 seed: 1337 eval_every: 100 eval_batches: 16 log_every: 10
    threads: 0 device: "auto" sharding: "NO_SHARD" param_dtype: "fp32" reduce_dtype: "fp32"
    checkpoint_dir: "" checkpoint_every: 0 keep_last: 3 init_from: "" save_signal: ""
    checkpoint_async: true bucket_mb: 4 on_save_error: "stop" resume_from: ""
    recompute: "none" tensorboard_dir: "" metrics_jsonl: "" straggler_factor: 1.5
    straggler_window: 20 straggler_every: 10)pb",
                                                            &before));
  std::string report;
  MessageDifferencer diff;
  diff.ReportDifferencesToString(&report);
  EXPECT_TRUE(diff.Compare(before, DefaultTrainConfig())) << report;
  EXPECT_TRUE(ValidateModelConfig(DefaultTrainConfig()).ok());
}

std::vector<std::string> Args(std::initializer_list<const char*> a) { return {a.begin(), a.end()}; }

TEST(TrainFlagsTest, SyntaxAsAbseilAndTheLauncherTakeIt) {
  absl::StatusOr<TrainArgs> a = ParseTrainArgs(Args(
      {"--n-layer=3", "--kind", "gpt", "-lr", "0.5", "--nocheckpoint_async", "--print_config",
       "--checkpoint-dir=/tmp/x", "--dist_timeout_s=7", "--config", "f.textproto", "--threads=-0"}));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->flags.model().n_layer(), 3);
  EXPECT_EQ(a->flags.model().kind(), "gpt");
  EXPECT_FLOAT_EQ(a->flags.optim().lr(), 0.5f);
  EXPECT_TRUE(a->flags.has_checkpoint_async());
  EXPECT_FALSE(a->flags.checkpoint_async());
  EXPECT_EQ(a->flags.checkpoint_dir(), "/tmp/x");
  EXPECT_TRUE(a->print_config);
  EXPECT_EQ(a->dist_timeout_s, 7);
  EXPECT_EQ(a->config_path, "f.textproto");
  EXPECT_TRUE(a->flags.has_threads());
  // Only the named fields are present, so merging keeps everything else.
  EXPECT_FALSE(a->flags.has_steps());
  EXPECT_FALSE(a->flags.model().has_n_head());
  EXPECT_FALSE(a->flags.has_data());

  a = ParseTrainArgs(Args({"--checkpoint_async=false", "--checkpoint_async", "--model=gpt"}));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->flags.checkpoint_async());  // the last one wins
  a = ParseTrainArgs(Args({"--checkpoint_async=no"}));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_FALSE(a->flags.checkpoint_async());
  EXPECT_TRUE(ParseTrainArgs(Args({"-h"}))->help);
  EXPECT_FALSE(ParseTrainArgs(Args({"--help=false"}))->help);
}

TEST(TrainFlagsTest, BadCommandLinesAreOneLineNamingTheFlag) {
  const std::pair<std::vector<std::string>, std::string> cases[] = {
      {Args({"--bogus_flag=1"}), "unknown flag --bogus_flag"},
      {Args({"--lr=fast"}), "--lr: cannot parse 'fast' as float"},
      {Args({"--steps=3x"}), "--steps: cannot parse '3x' as int32"},
      {Args({"--seq_len"}), "--seq_len needs a value"},
      {Args({"--checkpoint_async=maybe"}), "--checkpoint_async: cannot parse 'maybe'"},
      {Args({"--nocheckpoint_async=1"}), "--nocheckpoint_async takes no value"},
      {Args({"--nosteps"}), "unknown flag --nosteps"},
      {Args({"--dist_timeout_s=0"}), "--dist_timeout_s must be > 0"},
      {Args({"stray"}), "unexpected argument 'stray'"},
      {Args({"--", "after_dashes"}), "unexpected argument 'after_dashes'"},
      {Args({"--="}), "malformed flag '--='"},
  };
  for (const auto& [args, needle] : cases) {
    absl::StatusOr<TrainArgs> a = ParseTrainArgs(args);
    ASSERT_FALSE(a.ok()) << needle;
    const std::string msg(a.status().message());
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(TrainFlagsTest, HelpListsEveryFlagGroupedByMessage) {
  const std::string help = TrainUsage();
  size_t last = 0;
  for (const char* group : {"\nmodel:\n", "\ndata:\n", "\noptim:\n", "\nrun:\n", "\nnot config:\n"}) {
    const size_t at = help.find(group);
    ASSERT_NE(at, std::string::npos) << group << help;
    EXPECT_GT(at, last) << group;
    last = at;
  }
  for (const ConfigLeaf& leaf : ConfigLeaves()) {
    EXPECT_TRUE(help.find("  --" + leaf.flag() + " ") != std::string::npos ||
                help.find("  --" + leaf.flag() + ",") != std::string::npos)
        << leaf.flag();
    EXPECT_NE(help.find(leaf.spec().help()), std::string::npos) << leaf.flag();
  }
  EXPECT_NE(help.find("--model, --kind (default: gpt)"), std::string::npos) << help;
  EXPECT_NE(help.find("--dist_timeout_s (default: 300)"), std::string::npos) << help;
}

TEST(TrainFlagsTest, FlagsOverrideTheDefaults) {
  absl::StatusOr<TrainArgs> a = ParseTrainArgs(Args({"--eval_every=0", "--n_head=2"}));
  ASSERT_TRUE(a.ok());
  absl::StatusOr<proto::TrainConfig> c = ResolveTrainConfig(*a);
  ASSERT_TRUE(c.ok()) << c.status();
  proto::TrainConfig want = DefaultTrainConfig();
  want.set_eval_every(0);
  want.mutable_model()->set_n_head(2);
  EXPECT_TRUE(MessageDifferencer::Equals(*c, want));
}

// Both ranks publish through one in-memory store, on two threads.
absl::Status SameConfig(const proto::TrainConfig& rank0, const proto::TrainConfig& rank1) {
  HashStore store;
  absl::Status s0, s1;
  std::thread t([&] { s1 = CheckSameConfig(store, 1, 2, rank1, absl::Seconds(10)); });
  s0 = CheckSameConfig(store, 0, 2, rank0, absl::Seconds(10));
  t.join();
  EXPECT_EQ(s0.ok(), s1.ok()) << s0 << " / " << s1;
  return s0;
}

TEST(RankPolicyTest, RankLocalFieldsMayDifferMustMatchFieldsRefuseNamingTheFlag) {
  proto::TrainConfig a = DefaultTrainConfig(), b = a;
  b.set_threads(3);     // RANKS_LOCAL
  b.set_log_every(77);  // RANKS_LOCAL
  EXPECT_TRUE(SameConfig(a, b).ok());

  b = a;
  b.mutable_model()->set_n_layer(3);
  b.mutable_model()->set_kind("llama");  // its flag is --model
  absl::Status s = SameConfig(a, b);
  ASSERT_FALSE(s.ok());
  const std::string msg(s.message());
  EXPECT_NE(msg.find("rank 1's config differs from rank 0's"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--model \"gpt\" vs \"llama\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("--n_layer 4 vs 3"), std::string::npos) << msg;

  // Evaluation is collective: a rank evaluating on another cadence would hang.
  b = a;
  b.set_eval_every(5);
  s = SameConfig(a, b);
  EXPECT_NE(std::string(s.message()).find("--eval_every 100 vs 5"), std::string::npos) << s;

  // An unset field is its default on the other rank too.
  b = a;
  b.mutable_model()->clear_rope_theta();
  EXPECT_TRUE(SameConfig(a, b).ok());
}

TEST(ResumePolicyTest, MayChangeIsReportedMustMatchIsRefusedFreeIsSilent) {
  const proto::TrainConfig saved = DefaultTrainConfig();
  proto::TrainConfig now = saved;
  now.set_log_every(1);                 // RESUME_FREE
  now.set_sharding("FULL_SHARD");       // RESUME_FREE: checkpoints reshard
  now.mutable_optim()->set_lr(1e-3f);   // RESUME_REPORT
  now.set_seed(9);                      // RESUME_REPORT
  std::vector<std::string> changed;
  ASSERT_TRUE(ckpt::CheckResumeConfig(saved, now, "step_00000002", &changed).ok());
  EXPECT_EQ(changed, (std::vector<std::string>{"--lr 0.003 -> 0.001", "--seed 1337 -> 9"}));

  now = saved;
  now.mutable_model()->set_n_embd(64);  // RESUME_MATCH
  changed.clear();
  absl::Status s = ckpt::CheckResumeConfig(saved, now, "step_00000002", &changed);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find(
                "step_00000002 was saved with --n_embd=128 but this run has --n_embd=64"),
            std::string::npos)
      << s;

  // A checkpoint saved before the Llama fields existed resumes as the
  // defaults (GPT-2's own choices); one saved with another value does not.
  proto::TrainConfig old = saved;
  old.mutable_model()->clear_n_kv_head();
  old.mutable_model()->clear_rope_theta();
  old.mutable_model()->clear_norm_eps();
  old.mutable_model()->clear_tie_embeddings();
  changed.clear();
  EXPECT_TRUE(ckpt::CheckResumeConfig(old, saved, "step_00000002", &changed).ok());
  EXPECT_TRUE(changed.empty());
  old.mutable_model()->set_tie_embeddings(false);
  EXPECT_FALSE(ckpt::CheckResumeConfig(old, saved, "step_00000002", &changed).ok());
}

TEST(ValidateTest, ModelFieldsGptHasNoKnobForAreRefusedAndParsersAreTheEngines) {
  const auto err = [](void (*edit)(proto::TrainConfig*)) {
    proto::TrainConfig c = DefaultTrainConfig();
    edit(&c);
    return std::string(ValidateTrainConfig(c).message());
  };
  EXPECT_NE(err([](proto::TrainConfig* c) { c->mutable_model()->set_n_kv_head(2); })
                .find("--n_kv_head is not supported by --model gpt"),
            std::string::npos);
  EXPECT_NE(err([](proto::TrainConfig* c) { c->mutable_model()->set_tie_embeddings(false); })
                .find("--tie_embeddings"),
            std::string::npos);
  EXPECT_NE(err([](proto::TrainConfig* c) { c->mutable_model()->set_kind("bert"); })
                .find("--model must be one of classifier, dit, gpt, llama"),
            std::string::npos);
  EXPECT_NE(err([](proto::TrainConfig* c) { c->set_param_dtype("fp8"); })
                .find("--param_dtype: dtype must be fp32, bf16 or fp16, got 'fp8'"),
            std::string::npos);
  EXPECT_NE(err([](proto::TrainConfig* c) { c->set_sharding("ZERO9"); }).find("--sharding must be"),
            std::string::npos);
  EXPECT_NE(err([](proto::TrainConfig* c) { c->set_save_signal("USR9"); })
                .find("--save_signal: unknown signal \"USR9\""),
            std::string::npos);
  // The defaults equal to GPT-2's choices are accepted when set explicitly.
  proto::TrainConfig c = DefaultTrainConfig();
  c.mutable_model()->set_n_kv_head(4);
  c.mutable_model()->set_ffn_hidden(512);
  EXPECT_TRUE(ValidateModelConfig(c).ok());
}

}  // namespace
}  // namespace anvil
