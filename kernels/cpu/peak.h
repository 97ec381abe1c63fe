// Measured single-precision matmul peak of this machine, the denominator of
// the MFU figures the trainer and benchmarks print.
//
// Times a square sgemm (default 2048^3, through the same OpenBLAS and thread
// setting the CPU backend uses) and returns the best of a few runs in
// GFLOP/s. Takes about a quarter of a second on 2 cores; the result is not
// cached (call once and keep it).
#pragma once

namespace anvil::kernels {

// num_threads <= 0 means all cores, as for MakeCpuBackend.
double MeasureSgemmPeakGflops(int num_threads, int n = 2048, int repeats = 4);

}  // namespace anvil::kernels
