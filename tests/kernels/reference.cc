// Naive double-precision references (reference.h).
#include "tests/kernels/reference.h"

#include <cmath>

namespace anvil::kernels::ref {

Vec EncoderForward(const std::vector<int32_t>& tokens, const Vec& wte, const Vec& wpe, int B, int T,
                   int C) {
  Vec out(static_cast<size_t>(B) * T * C);
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t)
      for (int c = 0; c < C; ++c) {
        const int tok = tokens[b * T + t];
        out[(b * T + t) * C + c] = wte[tok * C + c] + wpe[t * C + c];
      }
  return out;
}

void EncoderBackward(Vec& dwte, Vec& dwpe, const Vec& dout, const std::vector<int32_t>& tokens,
                     int B, int T, int C, int V, int maxT) {
  dwte.assign(static_cast<size_t>(V) * C, 0.0);
  dwpe.assign(static_cast<size_t>(maxT) * C, 0.0);
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t)
      for (int c = 0; c < C; ++c) {
        const double d = dout[(b * T + t) * C + c];
        dwte[tokens[b * T + t] * C + c] += d;
        dwpe[t * C + c] += d;
      }
}

void LayerNormForward(Vec& out, Vec& mean, Vec& rstd, const Vec& inp, const Vec& weight,
                      const Vec& bias, int N, int C) {
  out.assign(static_cast<size_t>(N) * C, 0.0);
  mean.assign(N, 0.0);
  rstd.assign(N, 0.0);
  for (int i = 0; i < N; ++i) {
    double m = 0;
    for (int c = 0; c < C; ++c) m += inp[i * C + c];
    m /= C;
    double var = 0;
    for (int c = 0; c < C; ++c) var += (inp[i * C + c] - m) * (inp[i * C + c] - m);
    var /= C;
    const double s = 1.0 / std::sqrt(var + 1e-5);
    for (int c = 0; c < C; ++c) out[i * C + c] = (inp[i * C + c] - m) * s * weight[c] + bias[c];
    mean[i] = m;
    rstd[i] = s;
  }
}

void LayerNormBackward(Vec& dinp, Vec& dweight, Vec& dbias, const Vec& dout, const Vec& inp,
                       const Vec& weight, int N, int C) {
  Vec out, mean, rstd;
  LayerNormForward(out, mean, rstd, inp, weight, Vec(C, 0.0), N, C);
  dinp.assign(static_cast<size_t>(N) * C, 0.0);
  dweight.assign(C, 0.0);
  dbias.assign(C, 0.0);
  for (int i = 0; i < N; ++i) {
    // Straight from the chain rule: y_c = xhat_c w_c + b_c,
    // xhat_c = (x_c - mean) rstd, with full Jacobian of xhat w.r.t. x.
    std::vector<double> xhat(C), dxhat(C);
    for (int c = 0; c < C; ++c) {
      xhat[c] = (inp[i * C + c] - mean[i]) * rstd[i];
      dxhat[c] = dout[i * C + c] * weight[c];
      dweight[c] += dout[i * C + c] * xhat[c];
      dbias[c] += dout[i * C + c];
    }
    for (int j = 0; j < C; ++j) {
      double g = 0;
      for (int c = 0; c < C; ++c) {
        // d xhat_c / d x_j = rstd * (delta_cj - 1/C - xhat_c xhat_j / C)
        const double jac = rstd[i] * ((c == j ? 1.0 : 0.0) - 1.0 / C - xhat[c] * xhat[j] / C);
        g += dxhat[c] * jac;
      }
      dinp[i * C + j] = g;
    }
  }
}

Vec MatmulForward(const Vec& inp, const Vec& weight, const Vec& bias, int N, int C, int OC) {
  Vec out(static_cast<size_t>(N) * OC);
  for (int i = 0; i < N; ++i)
    for (int o = 0; o < OC; ++o) {
      double s = bias.empty() ? 0.0 : bias[o];
      for (int c = 0; c < C; ++c) s += inp[i * C + c] * weight[o * C + c];
      out[i * OC + o] = s;
    }
  return out;
}

void MatmulBackward(Vec& dinp, Vec& dweight, Vec& dbias, const Vec& dout, const Vec& inp,
                    const Vec& weight, int N, int C, int OC) {
  dinp.assign(static_cast<size_t>(N) * C, 0.0);
  dweight.assign(static_cast<size_t>(OC) * C, 0.0);
  dbias.assign(OC, 0.0);
  for (int i = 0; i < N; ++i)
    for (int o = 0; o < OC; ++o) {
      const double d = dout[i * OC + o];
      dbias[o] += d;
      for (int c = 0; c < C; ++c) {
        dinp[i * C + c] += d * weight[o * C + c];
        dweight[o * C + c] += d * inp[i * C + c];
      }
    }
}

void AttentionForward(Vec& out, Vec& att, const Vec& qkv, int B, int T, int C, int NH) {
  const int hs = C / NH;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hs));
  out.assign(static_cast<size_t>(B) * T * C, 0.0);
  att.assign(static_cast<size_t>(B) * NH * T * T, 0.0);
  auto q = [&](int b, int t, int h, int d) { return qkv[(b * T + t) * 3 * C + h * hs + d]; };
  auto k = [&](int b, int t, int h, int d) { return qkv[(b * T + t) * 3 * C + C + h * hs + d]; };
  auto v = [&](int b, int t, int h, int d) {
    return qkv[(b * T + t) * 3 * C + 2 * C + h * hs + d];
  };
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h)
      for (int t = 0; t < T; ++t) {
        double* a = &att[((b * NH + h) * T + t) * T];
        double mx = -1e300;
        for (int s = 0; s <= t; ++s) {
          double dot = 0;
          for (int d = 0; d < hs; ++d) dot += q(b, t, h, d) * k(b, s, h, d);
          a[s] = dot * scale;
          mx = std::max(mx, a[s]);
        }
        double sum = 0;
        for (int s = 0; s <= t; ++s) sum += (a[s] = std::exp(a[s] - mx));
        for (int s = 0; s <= t; ++s) a[s] /= sum;
        for (int d = 0; d < hs; ++d) {
          double o = 0;
          for (int s = 0; s <= t; ++s) o += a[s] * v(b, s, h, d);
          out[(b * T + t) * C + h * hs + d] = o;
        }
      }
}

Vec AttentionBackward(const Vec& dout, const Vec& qkv, int B, int T, int C, int NH) {
  const int hs = C / NH;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hs));
  Vec out, att;
  AttentionForward(out, att, qkv, B, T, C, NH);
  Vec dqkv(qkv.size(), 0.0);
  auto idx = [&](int b, int t, int part, int h, int d) {
    return static_cast<size_t>((b * T + t) * 3 * C + part * C + h * hs + d);
  };
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h)
      for (int t = 0; t < T; ++t) {
        const double* a = &att[((b * NH + h) * T + t) * T];
        const double* g = &dout[(b * T + t) * C + h * hs];
        // out_t = sum_s a_s v_s
        std::vector<double> da(t + 1, 0.0);
        for (int s = 0; s <= t; ++s)
          for (int d = 0; d < hs; ++d) {
            da[s] += g[d] * qkv[idx(b, s, 2, h, d)];
            dqkv[idx(b, s, 2, h, d)] += a[s] * g[d];
          }
        // a = softmax(z): dz_s = sum_r da_r a_r (delta_rs - a_s)
        for (int s = 0; s <= t; ++s) {
          double dz = 0;
          for (int r = 0; r <= t; ++r) dz += da[r] * a[r] * ((r == s ? 1.0 : 0.0) - a[s]);
          // z_s = scale * q_t . k_s
          for (int d = 0; d < hs; ++d) {
            dqkv[idx(b, t, 0, h, d)] += dz * scale * qkv[idx(b, s, 1, h, d)];
            dqkv[idx(b, s, 1, h, d)] += dz * scale * qkv[idx(b, t, 0, h, d)];
          }
        }
      }
  return dqkv;
}

namespace {
constexpr double kGeluS = 0.79788456080286535587989211986876;  // sqrt(2/pi)
}  // namespace

double Gelu(double x) { return 0.5 * x * (1.0 + std::tanh(kGeluS * (x + 0.044715 * x * x * x))); }

double GeluGrad(double x) {
  const double u = kGeluS * (x + 0.044715 * x * x * x);
  const double th = std::tanh(u);
  return 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * kGeluS * (1.0 + 3.0 * 0.044715 * x * x);
}

void SoftmaxCrossEntropyForward(Vec& losses, Vec& probs, const Vec& logits,
                                const std::vector<int32_t>& targets, int N, int V) {
  losses.assign(N, 0.0);
  probs.assign(static_cast<size_t>(N) * V, 0.0);
  for (int i = 0; i < N; ++i) {
    double mx = -1e300;
    for (int j = 0; j < V; ++j) mx = std::max(mx, logits[i * V + j]);
    double sum = 0;
    for (int j = 0; j < V; ++j) sum += std::exp(logits[i * V + j] - mx);
    for (int j = 0; j < V; ++j) probs[i * V + j] = std::exp(logits[i * V + j] - mx) / sum;
    if (targets[i] >= 0) losses[i] = -std::log(probs[i * V + targets[i]]);
  }
}

Vec SoftmaxCrossEntropyBackward(const Vec& logits, const std::vector<int32_t>& targets,
                                double dloss, int N, int V) {
  Vec losses, probs;
  SoftmaxCrossEntropyForward(losses, probs, logits, targets, N, V);
  Vec d(static_cast<size_t>(N) * V, 0.0);
  for (int i = 0; i < N; ++i) {
    if (targets[i] < 0) continue;
    for (int j = 0; j < V; ++j) d[i * V + j] = (probs[i * V + j] - (j == targets[i])) * dloss;
  }
  return d;
}

void AdamW(Vec& param, const Vec& grad, Vec& m, Vec& v, const AdamWParams& p) {
  for (size_t i = 0; i < param.size(); ++i) {
    const double g = grad[i] * p.grad_scale;
    m[i] = p.beta1 * m[i] + (1.0 - p.beta1) * g;
    v[i] = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
    const double mhat = m[i] / (1.0 - std::pow(static_cast<double>(p.beta1), p.step));
    const double vhat = v[i] / (1.0 - std::pow(static_cast<double>(p.beta2), p.step));
    param[i] -= p.lr * (mhat / (std::sqrt(vhat) + p.eps) + p.weight_decay * param[i]);
  }
}

void RmsNormForward(Vec& out, Vec& rstd, const Vec& x, const Vec& weight, int N, int C,
                    double eps) {
  out.assign(static_cast<size_t>(N) * C, 0.0);
  rstd.assign(N, 0.0);
  for (int i = 0; i < N; ++i) {
    double ss = 0;
    for (int c = 0; c < C; ++c) ss += x[i * C + c] * x[i * C + c];
    const double r = 1.0 / std::sqrt(ss / C + eps);
    for (int c = 0; c < C; ++c) out[i * C + c] = x[i * C + c] * r * weight[c];
    rstd[i] = r;
  }
}

void RmsNormBackward(Vec& dx, Vec& dweight, const Vec& dout, const Vec& x, const Vec& weight, int N,
                     int C, double eps) {
  dx.assign(static_cast<size_t>(N) * C, 0.0);
  dweight.assign(C, 0.0);
  for (int i = 0; i < N; ++i) {
    const double* xi = &x[static_cast<size_t>(i) * C];
    double ss = 0;
    for (int c = 0; c < C; ++c) ss += xi[c] * xi[c];
    const double r = 1.0 / std::sqrt(ss / C + eps);
    // d out_c / d x_j = w_c (delta_cj r + x_c dr/dx_j), dr/dx_j = -r^3 x_j / C.
    for (int j = 0; j < C; ++j) {
      const double drdx = -r * r * r * xi[j] / C;
      double g = 0;
      for (int c = 0; c < C; ++c) {
        g += dout[i * C + c] * weight[c] * ((c == j ? r : 0.0) + xi[c] * drdx);
      }
      dx[i * C + j] = g;
    }
    for (int c = 0; c < C; ++c) dweight[c] += dout[i * C + c] * xi[c] * r;
  }
}

Vec Rope(const Vec& x, int B, int T, int NH, int hd, double theta, bool inverse) {
  Vec y(x.size());
  const int h = hd / 2;
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < T; ++t) {
      for (int n = 0; n < NH; ++n) {
        const size_t o = ((static_cast<size_t>(b) * T + t) * NH + n) * hd;
        for (int i = 0; i < h; ++i) {
          const float inv_freq = static_cast<float>(1.0 / std::pow(theta, 2.0 * i / hd));
          const double a = static_cast<float>(t) * inv_freq;
          const double c = std::cos(a), s = inverse ? -std::sin(a) : std::sin(a);
          y[o + i] = x[o + i] * c - x[o + i + h] * s;
          y[o + i + h] = x[o + i + h] * c + x[o + i] * s;
        }
      }
    }
  }
  return y;
}

Vec SwiGluForward(const Vec& gate, const Vec& up) {
  Vec out(gate.size());
  for (size_t i = 0; i < gate.size(); ++i) {
    out[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
  }
  return out;
}

void SwiGluBackward(Vec& dgate, Vec& dup, const Vec& gate, const Vec& up, const Vec& dout) {
  dgate.assign(gate.size(), 0.0);
  dup.assign(gate.size(), 0.0);
  for (size_t i = 0; i < gate.size(); ++i) {
    const double s = 1.0 / (1.0 + std::exp(-gate[i]));
    dgate[i] = dout[i] * up[i] * (s + gate[i] * s * (1.0 - s));
    dup[i] = dout[i] * gate[i] * s;
  }
}

}  // namespace anvil::kernels::ref
