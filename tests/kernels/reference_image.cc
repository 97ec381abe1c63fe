#include "tests/kernels/reference_image.h"

#include <cmath>

namespace anvil::kernels::ref {

Vec Conv2dForward(const Vec& x, const Vec& w, const Vec& bias, const ConvShape& s) {
  const int OH = s.OH(), OW = s.OW();
  Vec y(static_cast<size_t>(s.B) * OH * OW * s.OC, 0.0);
  for (int b = 0; b < s.B; ++b)
    for (int oh = 0; oh < OH; ++oh)
      for (int ow = 0; ow < OW; ++ow)
        for (int o = 0; o < s.OC; ++o) {
          double acc = bias.empty() ? 0.0 : bias[o];
          for (int kh = 0; kh < s.KH; ++kh)
            for (int kw = 0; kw < s.KW; ++kw) {
              const int ih = oh * s.sh - s.ph + kh, iw = ow * s.sw - s.pw + kw;
              if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
              for (int c = 0; c < s.C; ++c) {
                acc += x[((static_cast<size_t>(b) * s.H + ih) * s.W + iw) * s.C + c] *
                       w[((static_cast<size_t>(o) * s.C + c) * s.KH + kh) * s.KW + kw];
              }
            }
          y[((static_cast<size_t>(b) * OH + oh) * OW + ow) * s.OC + o] = acc;
        }
  return y;
}

void Conv2dBackward(Vec& dx, Vec& dw, Vec& db, const Vec& dy, const Vec& x, const Vec& w,
                    const ConvShape& s) {
  const int OH = s.OH(), OW = s.OW();
  dx.assign(x.size(), 0.0);
  dw.assign(w.size(), 0.0);
  db.assign(s.OC, 0.0);
  for (int b = 0; b < s.B; ++b)
    for (int oh = 0; oh < OH; ++oh)
      for (int ow = 0; ow < OW; ++ow)
        for (int o = 0; o < s.OC; ++o) {
          const double g = dy[((static_cast<size_t>(b) * OH + oh) * OW + ow) * s.OC + o];
          db[o] += g;
          for (int kh = 0; kh < s.KH; ++kh)
            for (int kw = 0; kw < s.KW; ++kw) {
              const int ih = oh * s.sh - s.ph + kh, iw = ow * s.sw - s.pw + kw;
              if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
              for (int c = 0; c < s.C; ++c) {
                const size_t xi = ((static_cast<size_t>(b) * s.H + ih) * s.W + iw) * s.C + c;
                const size_t wi = ((static_cast<size_t>(o) * s.C + c) * s.KH + kh) * s.KW + kw;
                dx[xi] += g * w[wi];
                dw[wi] += g * x[xi];
              }
            }
        }
}

void GroupNormForward(Vec& out, Vec& mean, Vec& rstd, const Vec& x, const Vec& w, const Vec& b,
                      int B, int N, int C, int G, double eps) {
  const int Cg = C / G;
  out.assign(x.size(), 0.0);
  mean.assign(static_cast<size_t>(B) * G, 0.0);
  rstd.assign(static_cast<size_t>(B) * G, 0.0);
  for (int s = 0; s < B; ++s)
    for (int g = 0; g < G; ++g) {
      auto at = [&](int n, int c) { return (static_cast<size_t>(s) * N + n) * C + g * Cg + c; };
      double m = 0, v = 0;
      for (int n = 0; n < N; ++n)
        for (int c = 0; c < Cg; ++c) m += x[at(n, c)];
      m /= static_cast<double>(N) * Cg;
      for (int n = 0; n < N; ++n)
        for (int c = 0; c < Cg; ++c) v += (x[at(n, c)] - m) * (x[at(n, c)] - m);
      v /= static_cast<double>(N) * Cg;
      const double r = 1.0 / std::sqrt(v + eps);
      mean[s * G + g] = m;
      rstd[s * G + g] = r;
      for (int n = 0; n < N; ++n)
        for (int c = 0; c < Cg; ++c) {
          out[at(n, c)] = (x[at(n, c)] - m) * r * w[g * Cg + c] + (b.empty() ? 0.0 : b[g * Cg + c]);
        }
    }
}

void GroupNormBackward(Vec& dx, Vec& dw, Vec& db, const Vec& dy, const Vec& x, const Vec& w, int B,
                       int N, int C, int G, double eps) {
  Vec out, mean, rstd;
  GroupNormForward(out, mean, rstd, x, w, Vec(), B, N, C, G, eps);
  const int Cg = C / G;
  const double M = static_cast<double>(N) * Cg;
  dx.assign(x.size(), 0.0);
  dw.assign(C, 0.0);
  db.assign(C, 0.0);
  for (int s = 0; s < B; ++s)
    for (int g = 0; g < G; ++g) {
      auto at = [&](int n, int c) { return (static_cast<size_t>(s) * N + n) * C + g * Cg + c; };
      const double m = mean[s * G + g], r = rstd[s * G + g];
      double sum_g = 0, sum_gx = 0;  // g = dy * w
      for (int n = 0; n < N; ++n)
        for (int c = 0; c < Cg; ++c) {
          const double xhat = (x[at(n, c)] - m) * r, gg = dy[at(n, c)] * w[g * Cg + c];
          sum_g += gg;
          sum_gx += gg * xhat;
          dw[g * Cg + c] += dy[at(n, c)] * xhat;
          db[g * Cg + c] += dy[at(n, c)];
        }
      for (int n = 0; n < N; ++n)
        for (int c = 0; c < Cg; ++c) {
          const double xhat = (x[at(n, c)] - m) * r, gg = dy[at(n, c)] * w[g * Cg + c];
          dx[at(n, c)] = r * (gg - sum_g / M - xhat * sum_gx / M);
        }
    }
}

Vec TimestepEmbedding(const Vec& t, int dim, double max_period, bool flip_sin_to_cos, double shift,
                      double scale) {
  const int half = dim / 2;
  Vec out(t.size() * dim, 0.0);
  for (size_t b = 0; b < t.size(); ++b)
    for (int i = 0; i < half; ++i) {
      const double arg = scale * t[b] * std::exp(-std::log(max_period) * i / (half - shift));
      out[b * dim + (flip_sin_to_cos ? half + i : i)] = std::sin(arg);
      out[b * dim + (flip_sin_to_cos ? i : half + i)] = std::cos(arg);
    }
  return out;
}

}  // namespace anvil::kernels::ref
