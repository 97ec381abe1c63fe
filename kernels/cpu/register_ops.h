// Registration of the CPU op families; RegisterCpuOps (called once by
// MakeCpuDevice) calls one function per family.
#pragma once

namespace anvil::kernels::cpu {

void RegisterCpuOps();  // idempotent, thread-safe

void RegisterBasicOps();          // family_basic.cc: convert, elementwise, activation
void RegisterNormOps();           // family_norm.cc
void RegisterLinearOps();         // family_linear.cc
void RegisterAttentionOps();      // family_attention.cc
void RegisterEmbeddingLossOps();  // family_embedding_loss.cc
void RegisterOptimOps();          // family_optim.cc
void RegisterConvOps();           // family_conv.cc
void RegisterImageOps();          // family_image.cc
void RegisterDiffusionOps();      // family_diffusion.cc: SiLU, MSE, timestep embedding
void RegisterConcatOps();         // family_concat.cc: channel concatenation

}  // namespace anvil::kernels::cpu
