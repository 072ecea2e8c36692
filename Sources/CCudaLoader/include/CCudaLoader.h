#ifndef STRATA_CCUDALOADER_H
#define STRATA_CCUDALOADER_H

// Strata's CUDA binary does not link cudart, cuBLAS, cuDNN or NVRTC: it opens them with dlopen
// on first use (cuda_loader.c), so that it starts, and runs on the CPU, on a machine without
// them, and so that `--device cuda` can say which library is missing. Built with the CUDA trait
// only; without it this header declares functions nothing calls.

/// Opens the four CUDA libraries (sonames of the CUDA version this binary was built against):
/// from the directories in $STRATA_CUDA_LIBS (colon-separated) when it is set, else through the
/// dynamic loader's own search (LD_LIBRARY_PATH, the binary's RUNPATH, ld.so.cache).
/// Returns 0 when all four are open; otherwise -1 with `message` naming each missing library
/// and the dynamic loader's reason. Safe to call again and from several threads.
int strata_cuda_load(char *message, int capacity);

/// The same search for `directories` (colon-separated; NULL: the dynamic loader's search), as a
/// check only: nothing stays open. Returns 0 when all four would load, else -1 and the message.
int strata_cuda_probe(const char *directories, char *message, int capacity);

/// The full path of the `libnvrtc-builtins.so.MAJOR.MINOR` opened next to NVRTC when NVRTC was
/// opened (cuda_loader.c says why), or "" when none was found there or NVRTC is not open yet.
const char *strata_cuda_nvrtc_builtins(void);

/// The resolved path of the NVRTC library this process uses (opening it if needed), or "" when it
/// cannot be opened: part of the kernel cache's key.
const char *strata_cuda_nvrtc_path(void);

/// "libcudart.so.13 libcublas.so.13 libcudnn.so.9 libnvrtc.so.13": the sonames this binary opens.
const char *strata_cuda_sonames(void);

#endif
