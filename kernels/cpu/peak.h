// Measured matmul peaks of this machine, the denominators of the MFU figures
// the trainer and benchmarks print.
//
// Each times a square n^3 GEMM C = A B^T (default 2048^3) and returns the
// best of a few runs in GFLOP/s (2 n^3 flops each):
//  - MeasureSgemmPeakGflops: fp32 through OpenBLAS sgemm and the thread
//    setting the CPU device uses;
//  - MeasureDnnlSgemmPeakGflops: fp32 through oneDNN (cpu/dnnl_gemm.h);
//  - MeasureBf16GemmPeakGflops: bf16 inputs, fp32 accumulation and output,
//    through oneDNN: the rate of the bf16 path (AMX or AVX512-BF16 where the
//    CPU has them).
// The first run warms up (primitive creation, page faults) and is not
// counted. About a quarter of a second each on 2 cores; the results are not
// cached (call once and keep them).
#pragma once

namespace anvil::kernels {

// num_threads <= 0 means all cores, as for MakeCpuDevice.
double MeasureSgemmPeakGflops(int num_threads, int n = 2048, int repeats = 4);
double MeasureDnnlSgemmPeakGflops(int num_threads, int n = 2048, int repeats = 4);
double MeasureBf16GemmPeakGflops(int num_threads, int n = 2048, int repeats = 4);

}  // namespace anvil::kernels
