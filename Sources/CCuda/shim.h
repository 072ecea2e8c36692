// CUDA runtime, cuBLAS, cuDNN 9 and NVRTC, from the prefix scripts/install-cuda.sh lays out
// (found through pkg-config `ccuda`). Only built with the `CUDA` trait.
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <cudnn.h>
#include <nvrtc.h>
