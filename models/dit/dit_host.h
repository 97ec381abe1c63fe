// Host-side pieces of the DiT: the fixed 2-D sin-cos positional embedding,
// the patch permutations between NHWC images and token rows, and the
// Xavier-uniform initialiser.
//
// Token t = gy * G + gx (G = S/p, row-major over the patch grid, as
// models.py flattens the patch conv's output). Patch rows for the patch
// embedding are in the conv weight's order (c, i, j): index c*p*p + i*p + j
// for pixel (gy*p + i, gx*p + j) and channel c. Prediction / target rows are
// in the final linear's order (i, j, c): (i*p + j)*Cout + c, which is what
// models.py's unpatchify reads.
#pragma once

#include <cstddef>
#include <cstdint>

#include "models/dit/dit_config.h"

namespace anvil {

// pos (T,C): models.py get_2d_sincos_pos_embed(C, G): the first C/2 columns
// encode the grid column gx, the last C/2 the row gy; each half is
// [sin(x*w_k) | cos(x*w_k)], w_k = 10000^(-k/(C/4)), k < C/4 (computed in
// double, stored as float).
void DitSinCosPositions(const DitConfig& c, float* pos);

// x (B,S,S,Cin) NHWC -> rows (B*T, Cin*p*p) in (c, i, j) order.
void DitPatchify(const DitConfig& c, int batch, const float* x, float* rows);
// img (B,S,S,C) -> rows (B*T, p*p*C) in (i, j, c) order, and back.
void DitToTokenOrder(const DitConfig& c, int batch, const float* img, float* rows);
void DitFromTokenOrder(const DitConfig& c, int batch, const float* rows, float* img);

// dst[i] ~ U(-a, a), counter-based like NormalInit (models/init_rng.h).
void UniformInit(float* dst, size_t n, float a, uint64_t seed, uint64_t stream);

}  // namespace anvil
