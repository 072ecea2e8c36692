// CUDA runtime, cuBLAS, cuDNN 9 and NVRTC, from the prefix scripts/install-cuda.sh lays out
// (found through pkg-config `ccuda`). Only built with the `CUDA` trait.
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <cudnn.h>
#include <nvrtc.h>

// CUDA 12 headers rename cudaGetDeviceProperties to cudaGetDeviceProperties_v2 with a macro,
// which Swift cannot see through; CUDA 13 does not. One C call that works with both.
static inline cudaError_t strata_cudaDeviceName(int device, char *name, int capacity) {
    struct cudaDeviceProp properties;
    cudaError_t status = cudaGetDeviceProperties(&properties, device);
    if (status != cudaSuccess || capacity <= 0) return status;
    int i = 0;
    for (; i < capacity - 1 && i < (int)sizeof(properties.name) && properties.name[i]; ++i) name[i] = properties.name[i];
    name[i] = 0;
    return cudaSuccess;
}
