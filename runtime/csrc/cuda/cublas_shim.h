#pragma once
// cuBLAS, loaded at run time (dlopen) so the CUDA backend builds against a toolkit without the
// cuBLAS headers/libraries (CI) and runs with whichever libcublas the process can load (the system
// toolkit's, or the one a torch/nvidia wheel brought). Only the entry points ember uses are
// declared; enum values are cuBLAS's stable ABI values.
#include <cuda_runtime.h>
#include <library_types.h>

namespace ember::cuda::cublas {

using Handle = struct cublasContext*;
using Status = int;
enum Op : int { kN = 0, kT = 1 };
enum ComputeType : int { kCompute32F = 68, kCompute32FFastTF32 = 77, kCompute64F = 70 };
constexpr int kGemmDefault = -1;

struct Api {
  Status (*create)(Handle*);
  Status (*set_stream)(Handle, cudaStream_t);
  Status (*set_workspace)(Handle, void*, size_t);
  Status (*gemm_ex)(Handle, int, int, int, int, int, const void*, const void*, cudaDataType, int, const void*,
                    cudaDataType, int, const void*, void*, cudaDataType, int, int, int);
  Status (*gemm_strided_batched_ex)(Handle, int, int, int, int, int, const void*, const void*, cudaDataType, int,
                                    long long, const void*, cudaDataType, int, long long, const void*, void*,
                                    cudaDataType, int, long long, int, int, int);
};

// The loaded API; RuntimeError naming the libraries tried when cuBLAS cannot be loaded.
const Api& api();
// The current device's handle, bound to the current stream, with a fixed workspace (graph-safe).
Handle handle();

}  // namespace ember::cuda::cublas
