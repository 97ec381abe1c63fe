// Naive float64 references for the diffusion ops (conv, image and
// diffusion_ops families), for tests only: plain loops written to be
// obviously correct. Layouts as the ops: NHWC activations, (OC,C,KH,KW)
// weights. Backward references return the gradients themselves (not
// accumulated).
#pragma once

#include <cstdint>
#include <vector>

namespace anvil::kernels::ref {

using Vec = std::vector<double>;

struct ConvShape {
  int B, H, W, C, OC, KH, KW, sh, sw, ph, pw;
  int OH() const { return (H + 2 * ph - KH) / sh + 1; }
  int OW() const { return (W + 2 * pw - KW) / sw + 1; }
};
// bias may be empty.
Vec Conv2dForward(const Vec& x, const Vec& w, const Vec& bias, const ConvShape& s);
void Conv2dBackward(Vec& dx, Vec& dw, Vec& db, const Vec& dy, const Vec& x, const Vec& w,
                    const ConvShape& s);

// x (B,N,C); mean, rstd (B,G).
void GroupNormForward(Vec& out, Vec& mean, Vec& rstd, const Vec& x, const Vec& w, const Vec& b,
                      int B, int N, int C, int G, double eps);
void GroupNormBackward(Vec& dx, Vec& dw, Vec& db, const Vec& dy, const Vec& x, const Vec& w, int B,
                       int N, int C, int G, double eps);

// out (B,dim), diffusers get_timestep_embedding in float64.
Vec TimestepEmbedding(const Vec& t, int dim, double max_period, bool flip_sin_to_cos, double shift,
                      double scale);

}  // namespace anvil::kernels::ref
