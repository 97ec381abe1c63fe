#include "models/unet/unet_config.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace anvil {
namespace {

bool HasRes(const UNetConfig& c, int res) {
  return std::find(c.attention_res.begin(), c.attention_res.end(), res) != c.attention_res.end();
}

absl::Status Divisible(int width, int by, const std::string& what, const std::string& flag) {
  if (width % by != 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, " (", width, ") must be divisible by --",
                                                   flag, " (", by, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<int>> ParseIntList(const std::string& s, const std::string& flag) {
  std::vector<int> out;
  if (absl::StripAsciiWhitespace(s).empty()) return out;
  for (absl::string_view part : absl::StrSplit(s, ',')) {
    int v = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, " must be a comma-separated list of integers, got \"", s, "\""));
    }
    out.push_back(v);
  }
  return out;
}

absl::Status ValidateUNetConfig(const UNetConfig& c) {
  for (auto [name, v] : {std::pair{"image_size", c.image_size},
                         {"image_channels", c.image_channels},
                         {"unet_channels", c.channels}, {"unet_blocks", c.blocks_per_level},
                         {"norm_groups", c.norm_groups}, {"n_head", c.n_head}}) {
    if (v <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " must be > 0, got ", v));
    }
  }
  // Bounds that keep every size in int and int64 arithmetic (hostile flags
  // are refused here, before anything is sized from them).
  for (auto [name, v, hi] : {std::tuple{"image_size", c.image_size, 1 << 14},
                             {"image_channels", c.image_channels, 1 << 12},
                             {"unet_channels", c.channels, 1 << 16},
                             {"unet_blocks", c.blocks_per_level, 64},
                             {"n_head", c.n_head, 1 << 12},
                             {"image_classes", c.num_classes, 1 << 24}}) {
    if (v > hi) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " must be <= ", hi, ", got ", v));
    }
  }
  if (!(c.dropout >= 0.0f && c.dropout < 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--unet_dropout must be in [0, 1), got ", c.dropout));
  }
  if (c.num_classes < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--image_classes must be >= 0 (0: unconditional), got ", c.num_classes));
  }
  if (c.channel_mult.empty()) {
    return absl::InvalidArgumentError("--unet_channel_mult needs at least one level");
  }
  for (int m : c.channel_mult) {
    if (m <= 0 || m > (1 << 16) / c.channels) {
      if (m > 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--unet_channels x --unet_channel_mult must be <= 65536, got ", c.channels, " x ", m));
      }
      return absl::InvalidArgumentError(
          absl::StrCat("--unet_channel_mult entries must be > 0, got ", m));
    }
  }
  const int L = static_cast<int>(c.channel_mult.size());
  if (L > 16 || c.image_size % (1 << (L - 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--image_size (", c.image_size, ") must be divisible by 2^(levels-1) = 2^", L - 1,
        " (levels = entries of --unet_channel_mult)"));
  }
  for (int r : c.attention_res) {
    bool found = false;
    for (int l = 0; l < L; ++l) found = found || (c.image_size >> l) == r;
    if (!found) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--unet_attention_res ", r, " is not a resolution of the UNet (", c.image_size,
          " halved per level)"));
    }
  }
  if (!(c.norm_eps > 0.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("--norm_eps must be > 0, got ", c.norm_eps));
  }
  const std::string groups = "norm_groups";
  if (c.channels % c.norm_groups != 0) {
    return Divisible(c.channels, c.norm_groups, "--unet_channels", groups);
  }
  const UNetPlan plan = BuildUNetPlan(c);
  for (const UNetStage& s : plan.stages) {
    const std::string what = absl::StrCat("block ", s.name, "'s");
    absl::Status st = Divisible(s.cin, c.norm_groups, what + " input width", groups);
    if (st.ok()) st = Divisible(s.cout, c.norm_groups, what + " width", groups);
    if (st.ok() && s.attn) st = Divisible(s.cout, c.n_head, what + " width", "n_head");
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

UNetPlan BuildUNetPlan(const UNetConfig& c) {
  UNetPlan p;
  const int L = static_cast<int>(c.channel_mult.size());
  auto tensor = [&](int res, int ch) {
    p.tensors.push_back({res, ch});
    return static_cast<int>(p.tensors.size()) - 1;
  };
  int cur = tensor(c.image_size, c.channels);
  std::vector<int> skips = {cur};
  int res = c.image_size;
  for (int l = 0; l < L; ++l) {
    const int cout = c.channels * c.channel_mult[l];
    for (int i = 0; i < c.blocks_per_level; ++i) {
      UNetStage s;
      s.name = absl::StrCat("down.", l, ".", i);
      s.in_a = cur;
      s.cin = p.tensors[cur].c;
      s.cout = cout;
      s.res = res;
      s.attn = HasRes(c, res);
      s.out = tensor(res, cout);
      skips.push_back(s.out);
      cur = s.out;
      if (i == c.blocks_per_level - 1 && l != L - 1) {
        s.resample = Resample::kDown;
        res /= 2;
        s.out2 = tensor(res, cout);
        skips.push_back(s.out2);
        cur = s.out2;
      }
      p.stages.push_back(s);
    }
  }
  for (int i = 0; i < 2; ++i) {
    UNetStage s;
    s.name = absl::StrCat("mid.", i);
    s.in_a = cur;
    s.cin = s.cout = p.tensors[cur].c;
    s.res = res;
    s.attn = i == 0 && HasRes(c, res);
    s.out = tensor(res, s.cout);
    cur = s.out;
    p.stages.push_back(s);
  }
  for (int l = L - 1; l >= 0; --l) {
    const int cout = c.channels * c.channel_mult[l];
    for (int i = 0; i <= c.blocks_per_level; ++i) {
      UNetStage s;
      s.name = absl::StrCat("up.", l, ".", i);
      s.in_a = cur;
      s.in_b = skips.back();
      skips.pop_back();
      s.cin = p.tensors[cur].c + p.tensors[s.in_b].c;
      s.cout = cout;
      s.res = res;
      s.attn = HasRes(c, res);
      s.out = tensor(res, cout);
      cur = s.out;
      if (i == c.blocks_per_level && l != 0) {
        s.resample = Resample::kUp;
        res *= 2;
        s.out2 = tensor(res, cout);
        cur = s.out2;
      }
      p.stages.push_back(s);
    }
  }
  p.final_tensor = cur;
  return p;
}

void DeclareUNetParams(const UNetConfig& c, const UNetPlan& plan, ParamLayout* layout) {
  const int64_t E = UNetEmbedWidth(c), ch = c.channels, IC = c.image_channels;
  auto lin = [&](const std::string& n, int64_t out, int64_t in) {
    layout->Add(n + ".weight", {out, in}, true);
    layout->Add(n + ".bias", {out}, false);
  };
  auto conv = [&](const std::string& n, int64_t out, int64_t in, int64_t k) {
    layout->Add(n + ".weight", {out, in, k, k}, true);
    layout->Add(n + ".bias", {out}, false);
  };
  auto norm = [&](const std::string& n, int64_t ch_) {
    layout->Add(n + ".weight", {ch_}, false);
    layout->Add(n + ".bias", {ch_}, false);
  };
  layout->BeginUnit("embed");
  lin("time_embed.0", E, ch);
  lin("time_embed.2", E, E);
  if (c.num_classes > 0) layout->Add("class_embed.weight", {c.num_classes + 1, E}, false);
  conv("stem", ch, IC, 3);
  for (const UNetStage& s : plan.stages) {
    const std::string p = s.name + ".";
    layout->BeginUnit(s.name);
    norm(p + "norm1", s.cin);
    conv(p + "conv1", s.cout, s.cin, 3);
    lin(p + "temb", s.cout, E);
    norm(p + "norm2", s.cout);
    conv(p + "conv2", s.cout, s.cout, 3);
    if (s.cin != s.cout) conv(p + "skip", s.cout, s.cin, 1);
    if (s.attn) {
      norm(p + "attn.norm", s.cout);
      lin(p + "attn.qkv", 3 * int64_t{s.cout}, s.cout);
      lin(p + "attn.proj", s.cout, s.cout);
    }
    if (s.resample == Resample::kDown) conv(p + "down", s.cout, s.cout, 3);
    if (s.resample == Resample::kUp) conv(p + "up", s.cout, s.cout, 3);
  }
  layout->BeginUnit("out");
  norm("out.norm", ch);
  conv("out.conv", IC, ch, 3);
}

int64_t UNetNumParams(const UNetConfig& c) {
  ParamLayout layout;
  DeclareUNetParams(c, BuildUNetPlan(c), &layout);
  return static_cast<int64_t>(layout.total_numel());
}

double UNetFlopsPerImage(const UNetConfig& c) {
  // Forward multiply-adds of convolutions, linears and attention (q.k and
  // p.v); training = 3 x forward, 2 FLOPs per multiply-add.
  const UNetPlan plan = BuildUNetPlan(c);
  const double E = UNetEmbedWidth(c), S = c.image_size;
  double macs = c.channels * E + E * E + S * S * c.channels * c.image_channels * 9.0;
  for (const UNetStage& s : plan.stages) {
    const double n = static_cast<double>(s.res) * s.res, ci = s.cin, co = s.cout;
    macs += n * co * ci * 9 + E * co + n * co * co * 9;
    if (s.cin != s.cout) macs += n * co * ci;
    if (s.attn) macs += n * 4 * co * co + 2 * n * n * co;
    if (s.resample == Resample::kDown) macs += n / 4 * co * co * 9;
    if (s.resample == Resample::kUp) macs += n * 4 * co * co * 9;
  }
  macs += S * S * c.channels * c.image_channels * 9.0;
  return 6.0 * macs;
}

double UNetActivationBytesEstimate(const UNetConfig& c, int batch) {
  // What UNet::AllocateArena lays out with fp32 activations and no
  // recomputation, in double precision (sizes of any flags stay finite).
  const UNetPlan plan = BuildUNetPlan(c);
  const double S2 = static_cast<double>(c.image_size) * c.image_size, ch = c.channels,
               IC = c.image_channels, E = UNetEmbedWidth(c), G = c.norm_groups;
  double elems = 0, scratch = std::max({S2 * ch, S2 * IC, E}), wide = E;
  for (const UNetTensor& t : plan.tensors) elems += 2.0 * t.res * t.res * t.c;  // act + grad
  for (const UNetStage& s : plan.stages) {
    const double n = static_cast<double>(s.res) * s.res, ci = s.cin, co = s.cout;
    double st = n * (2 * ci + 4 * co) + co + 4 * G;  // gn1, silu1, h1, gn2, silu2, h2, tproj
    if (s.in_b >= 0) st += n * ci;                    // the concatenated input
    if (s.cin != s.cout) st += n * co;                // the 1x1 skip
    if (s.attn) st += n * 6 * co + n * c.n_head + 2 * G;
    if (s.resample == Resample::kUp) st += 4 * n * co;
    elems += st;
    scratch = std::max({scratch, n * ci, 4 * n * co});
    wide = std::max(wide, co);
  }
  // x_t, target, its compute copy, the prediction; the out unit's GroupNorm
  // and SiLU; the time embedding; six backward scratch buffers.
  elems += 4 * S2 * IC + 2 * S2 * ch + 2 * G + 6 * E + ch + 6 * scratch + 2 * wide + 4;
  // Each of ~20 pieces per stage is rounded up to 64 bytes.
  const double rounding = 64.0 * (20.0 * static_cast<double>(plan.stages.size()) +
                                  2.0 * static_cast<double>(plan.tensors.size()) + 40);
  return elems * batch * 4 + rounding;
}

}  // namespace anvil
