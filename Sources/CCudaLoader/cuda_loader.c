// Definitions of the CUDA runtime, cuBLAS, cuDNN and NVRTC functions Strata calls, each forwarding
// to the real one, found with dlsym in a library opened on first use. The binary therefore has no
// DT_NEEDED entry for any CUDA library (CCudaLoader.h says why).
//
// The libraries' own headers declare every stub below, so the compiler checks each parameter
// list against the real prototype. A stub whose library cannot be opened returns that library's
// "not initialized" status instead of crashing; `strata_cuda_load` is the call that says why.
#ifdef STRATA_CUDA

#define _GNU_SOURCE  // dladdr
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <cudnn.h>
#include <nvrtc.h>

#include "CCudaLoader.h"

enum { CUDART, CUBLAS, CUDNN, NVRTC, LIBRARY_COUNT };

static char sonames[LIBRARY_COUNT][32];
static char allSonames[LIBRARY_COUNT * 32];
static pthread_once_t sonamesOnce = PTHREAD_ONCE_INIT;

// The sonames of the versions whose headers this file was compiled with (CUDA 13 or 12).
static void fillSonames(void) {
    snprintf(sonames[CUDART], sizeof sonames[0], "libcudart.so.%d", CUDART_VERSION / 1000);
    snprintf(sonames[CUBLAS], sizeof sonames[0], "libcublas.so.%d", CUBLAS_VER_MAJOR);
    snprintf(sonames[CUDNN], sizeof sonames[0], "libcudnn.so.%d", CUDNN_MAJOR);
    snprintf(sonames[NVRTC], sizeof sonames[0], "libnvrtc.so.%d", CUDART_VERSION / 1000);
    snprintf(allSonames, sizeof allSonames, "%s %s %s %s",
             sonames[CUDART], sonames[CUBLAS], sonames[CUDNN], sonames[NVRTC]);
}

const char *strata_cuda_sonames(void) {
    pthread_once(&sonamesOnce, fillSonames);
    return allSonames;
}

// Appends to a bounded message buffer; never overflows, always terminated.
static void append(char *message, int capacity, const char *text) {
    if (!message || capacity <= 0) return;
    size_t used = strnlen(message, (size_t)capacity);
    if (used + 1 >= (size_t)capacity) return;
    snprintf(message + used, (size_t)capacity - used, "%s", text);
}

// Opens `library` from `directories` (colon-separated) or, when NULL, through the dynamic
// loader's own search. On failure appends "soname (reason)" to `message` and returns NULL.
static void *openLibrary(int library, const char *directories, char *message, int capacity) {
    pthread_once(&sonamesOnce, fillSonames);
    const char *name = sonames[library];
    char reason[512] = "";
    if (!directories) {
        void *handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
        if (handle) return handle;
        const char *e = dlerror();
        snprintf(reason, sizeof reason, "%s", e ? e : "not found");
    } else {
        const char *start = directories;
        while (1) {
            const char *end = strchr(start, ':');
            size_t length = end ? (size_t)(end - start) : strlen(start);
            if (length > 0) {
                char path[4096];
                snprintf(path, sizeof path, "%.*s/%s", (int)length, start, name);
                void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
                if (handle) return handle;
                const char *e = dlerror();
                // Keep the first reason that is not a plain "no such file": it is the useful one.
                if (e && (!reason[0] || strstr(reason, "No such file"))) snprintf(reason, sizeof reason, "%s", e);
            }
            if (!end) break;
            start = end + 1;
        }
        if (!reason[0] || strstr(reason, "No such file"))
            snprintf(reason, sizeof reason, "not in %s", directories[0] ? directories : "(empty list)");
    }
    if (message && capacity > 0 && message[0]) append(message, capacity, "; ");
    append(message, capacity, name);
    append(message, capacity, " (");
    append(message, capacity, reason);
    append(message, capacity, ")");
    return NULL;
}

static void *handles[LIBRARY_COUNT];
static pthread_mutex_t handlesLock = PTHREAD_MUTEX_INITIALIZER;

// NVRTC 13.0.x opens libnvrtc-builtins.so.MAJOR.MINOR by soname, through the dynamic loader's
// search only: opened by full path from a folder that is neither on LD_LIBRARY_PATH nor in a
// RUNPATH (STRATA_CUDA_LIBS), it fails every compile ("failed to open libnvrtc-builtins"). So the
// builtins are opened here first, by full path, from the folder NVRTC itself came from (or the
// folder its symlink points into): a library already loaded is found by its soname, so NVRTC's
// own dlopen then succeeds. Where they are missing nothing is opened and NVRTC searches as
// before (12.9 and 13.2+ look next to themselves anyway).
static void *builtinsHandle;
static char builtinsPath[4096];
static char nvrtcPath[4096];

static void *handleOf(int library, char *message, int capacity);

static void *openBuiltinsIn(const char *libraryPath, int major, int minor) {
    const char *slash = strrchr(libraryPath, '/');
    if (!slash) return NULL;
    snprintf(builtinsPath, sizeof builtinsPath, "%.*s/libnvrtc-builtins.so.%d.%d",
             (int)(slash - libraryPath), libraryPath, major, minor);
    return dlopen(builtinsPath, RTLD_NOW | RTLD_LOCAL);
}

static void preloadBuiltins(void *nvrtc) {
    nvrtcResult (*version)(int *, int *) = (nvrtcResult (*)(int *, int *))dlsym(nvrtc, "nvrtcVersion");
    int major = 0, minor = 0;
    Dl_info info;
    if (!version || version(&major, &minor) != NVRTC_SUCCESS || !dladdr((void *)version, &info) || !info.dli_fname)
        return;
    char *real = realpath(info.dli_fname, NULL);
    snprintf(nvrtcPath, sizeof nvrtcPath, "%s", real ? real : info.dli_fname);
    void *h = openBuiltinsIn(info.dli_fname, major, minor);
    if (!h && real) h = openBuiltinsIn(real, major, minor);
    free(real);
    __atomic_store_n(&builtinsHandle, h, __ATOMIC_RELEASE);
    if (!h) builtinsPath[0] = 0;
}

const char *strata_cuda_nvrtc_builtins(void) {
    return __atomic_load_n(&builtinsHandle, __ATOMIC_ACQUIRE) ? builtinsPath : "";
}

const char *strata_cuda_nvrtc_path(void) {
    void *h = handleOf(NVRTC, NULL, 0);
    return h ? nvrtcPath : "";
}

static const char *configuredDirectories(void) {
    const char *d = getenv("STRATA_CUDA_LIBS");
    return d && d[0] ? d : NULL;
}

// The handle of `library`, opening it on first use; NULL if it cannot be opened.
static void *handleOf(int library, char *message, int capacity) {
    void *h = __atomic_load_n(&handles[library], __ATOMIC_ACQUIRE);
    if (h) return h;
    pthread_mutex_lock(&handlesLock);
    h = handles[library];
    if (!h) {
        h = openLibrary(library, configuredDirectories(), message, capacity);
        // Before any NVRTC call can reach nvrtcCreateProgram.
        if (h && library == NVRTC) preloadBuiltins(h);
        if (h) __atomic_store_n(&handles[library], h, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&handlesLock);
    return h;
}

int strata_cuda_load(char *message, int capacity) {
    if (message && capacity > 0) message[0] = 0;
    int ok = 1;
    for (int library = 0; library < LIBRARY_COUNT; ++library)
        ok &= handleOf(library, message, capacity) != NULL;
    return ok ? 0 : -1;
}

int strata_cuda_probe(const char *directories, char *message, int capacity) {
    if (message && capacity > 0) message[0] = 0;
    int ok = 1;
    for (int library = 0; library < LIBRARY_COUNT; ++library) {
        void *h = openLibrary(library, directories, message, capacity);
        if (h) dlclose(h); else ok = 0;
    }
    return ok ? 0 : -1;
}

// The function `symbol` of `library`, or NULL (library missing, or too old to have it).
static void *symbolOf(int library, const char *symbol) {
    void *h = handleOf(library, NULL, 0);
    return h ? dlsym(h, symbol) : NULL;
}

// One stub: `ret name params` forwards `args` to the real function, looked up once. NAME_OF
// expands the name first, so a header macro such as CUDA 12's
// `#define cudaGetDeviceProperties cudaGetDeviceProperties_v2` looks up the symbol it means.
#define NAME_OF(x) NAME_OF_(x)
#define NAME_OF_(x) #x
#define STUB(library, failure, ret, name, params, args)                                        \
    ret name params {                                                                          \
        static ret (*real) params;                                                             \
        ret (*f) params = __atomic_load_n(&real, __ATOMIC_ACQUIRE);                            \
        if (!f) {                                                                              \
            f = (ret (*) params)symbolOf(library, NAME_OF(name));                              \
            if (!f) return failure;                                                            \
            __atomic_store_n(&real, f, __ATOMIC_RELEASE);                                      \
        }                                                                                      \
        return f args;                                                                         \
    }

#define RT(name, params, args) STUB(CUDART, cudaErrorInitializationError, cudaError_t, name, params, args)
#define BLAS(name, params, args) STUB(CUBLAS, CUBLAS_STATUS_NOT_INITIALIZED, cublasStatus_t, name, params, args)
#define DNN(name, params, args) STUB(CUDNN, CUDNN_STATUS_NOT_INITIALIZED, cudnnStatus_t, name, params, args)
#define RTC(name, params, args) STUB(NVRTC, NVRTC_ERROR_INTERNAL_ERROR, nvrtcResult, name, params, args)
// The status-to-text functions, which the error messages call even when the library is missing.
#define TEXT(library, name, params, args) \
    STUB(library, "(library not loaded: no text for this status)", const char *, name, params, args)

// MARK: CUDA runtime

RT(cudaGetDeviceCount, (int *count), (count))
RT(cudaSetDevice, (int device), (device))
RT(cudaDeviceGetAttribute, (int *value, enum cudaDeviceAttr attr, int device), (value, attr, device))
RT(cudaGetDeviceProperties, (struct cudaDeviceProp *prop, int device), (prop, device))
RT(cudaRuntimeGetVersion, (int *version), (version))
RT(cudaDeviceSynchronize, (void), ())
RT(cudaGetLastError, (void), ())
RT(cudaMalloc, (void **p, size_t size), (p, size))
RT(cudaFree, (void *p), (p))
RT(cudaMallocHost, (void **p, size_t size), (p, size))
RT(cudaFreeHost, (void *p), (p))
RT(cudaMemcpy, (void *dst, const void *src, size_t count, enum cudaMemcpyKind kind), (dst, src, count, kind))
RT(cudaMemcpyAsync, (void *dst, const void *src, size_t count, enum cudaMemcpyKind kind, cudaStream_t stream),
   (dst, src, count, kind, stream))
RT(cudaMemsetAsync, (void *p, int value, size_t count, cudaStream_t stream), (p, value, count, stream))
RT(cudaStreamCreateWithFlags, (cudaStream_t *stream, unsigned int flags), (stream, flags))
RT(cudaStreamDestroy, (cudaStream_t stream), (stream))
RT(cudaStreamSynchronize, (cudaStream_t stream), (stream))
RT(cudaEventCreateWithFlags, (cudaEvent_t *event, unsigned int flags), (event, flags))
RT(cudaEventDestroy, (cudaEvent_t event), (event))
RT(cudaEventRecord, (cudaEvent_t event, cudaStream_t stream), (event, stream))
RT(cudaEventSynchronize, (cudaEvent_t event), (event))
RT(cudaEventQuery, (cudaEvent_t event), (event))
RT(cudaStreamBeginCapture, (cudaStream_t stream, enum cudaStreamCaptureMode mode), (stream, mode))
RT(cudaStreamEndCapture, (cudaStream_t stream, cudaGraph_t *graph), (stream, graph))
RT(cudaGraphInstantiate, (cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags), (exec, graph, flags))
RT(cudaGraphLaunch, (cudaGraphExec_t exec, cudaStream_t stream), (exec, stream))
RT(cudaGraphExecDestroy, (cudaGraphExec_t exec), (exec))
RT(cudaGraphDestroy, (cudaGraph_t graph), (graph))
RT(cudaLibraryLoadData,
   (cudaLibrary_t *library, const void *code, enum cudaJitOption *jitOptions, void **jitValues,
    unsigned int jitCount, enum cudaLibraryOption *libraryOptions, void **libraryValues, unsigned int libraryCount),
   (library, code, jitOptions, jitValues, jitCount, libraryOptions, libraryValues, libraryCount))
RT(cudaLibraryGetKernel, (cudaKernel_t *kernel, cudaLibrary_t library, const char *name), (kernel, library, name))
RT(cudaLibraryUnload, (cudaLibrary_t library), (library))
RT(cudaLaunchKernel, (const void *func, dim3 grid, dim3 block, void **args, size_t sharedMem, cudaStream_t stream),
   (func, grid, block, args, sharedMem, stream))

TEXT(CUDART, cudaGetErrorString, (cudaError_t error), (error))

// MARK: cuBLAS

BLAS(cublasCreate_v2, (cublasHandle_t *handle), (handle))
BLAS(cublasDestroy_v2, (cublasHandle_t handle), (handle))
BLAS(cublasSetStream_v2, (cublasHandle_t handle, cudaStream_t stream), (handle, stream))
BLAS(cublasSetMathMode, (cublasHandle_t handle, cublasMath_t mode), (handle, mode))
BLAS(cublasSgemm_v2,
     (cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
      const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta, float *C, int ldc),
     (handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc))

// Trial groups' dense layers: one call for G members' GEMMs.
BLAS(cublasSgemmStridedBatched,
     (cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
      const float *alpha, const float *A, int lda, long long int strideA, const float *B, int ldb,
      long long int strideB, const float *beta, float *C, int ldc, long long int strideC, int batchCount),
     (handle, transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC, batchCount))

// Reduced precision (--precision bf16|fp16): 16-bit A and B, FP32 C and compute.
BLAS(cublasGemmEx,
     (cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
      const void *alpha, const void *A, cudaDataType Atype, int lda, const void *B, cudaDataType Btype, int ldb,
      const void *beta, void *C, cudaDataType Ctype, int ldc, cublasComputeType_t computeType, cublasGemmAlgo_t algo),
     (handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc, computeType, algo))
BLAS(cublasGemmStridedBatchedEx,
     (cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
      const void *alpha, const void *A, cudaDataType Atype, int lda, long long int strideA, const void *B,
      cudaDataType Btype, int ldb, long long int strideB, const void *beta, void *C, cudaDataType Ctype, int ldc,
      long long int strideC, int batchCount, cublasComputeType_t computeType, cublasGemmAlgo_t algo),
     (handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype, ldb, strideB, beta, C, Ctype, ldc,
      strideC, batchCount, computeType, algo))

TEXT(CUBLAS, cublasGetStatusString, (cublasStatus_t status), (status))

// MARK: cuDNN

DNN(cudnnCreate, (cudnnHandle_t *handle), (handle))
DNN(cudnnDestroy, (cudnnHandle_t handle), (handle))
DNN(cudnnSetStream, (cudnnHandle_t handle, cudaStream_t stream), (handle, stream))
DNN(cudnnCreateTensorDescriptor, (cudnnTensorDescriptor_t *d), (d))
DNN(cudnnDestroyTensorDescriptor, (cudnnTensorDescriptor_t d), (d))
DNN(cudnnSetTensor4dDescriptor,
    (cudnnTensorDescriptor_t d, cudnnTensorFormat_t format, cudnnDataType_t type, int n, int c, int h, int w),
    (d, format, type, n, c, h, w))
DNN(cudnnCreateFilterDescriptor, (cudnnFilterDescriptor_t *d), (d))
DNN(cudnnDestroyFilterDescriptor, (cudnnFilterDescriptor_t d), (d))
DNN(cudnnSetFilter4dDescriptor,
    (cudnnFilterDescriptor_t d, cudnnDataType_t type, cudnnTensorFormat_t format, int k, int c, int h, int w),
    (d, type, format, k, c, h, w))
DNN(cudnnCreateConvolutionDescriptor, (cudnnConvolutionDescriptor_t *d), (d))
DNN(cudnnDestroyConvolutionDescriptor, (cudnnConvolutionDescriptor_t d), (d))
DNN(cudnnSetConvolution2dDescriptor,
    (cudnnConvolutionDescriptor_t d, int padH, int padW, int strideH, int strideW, int dilationH, int dilationW,
     cudnnConvolutionMode_t mode, cudnnDataType_t computeType),
    (d, padH, padW, strideH, strideW, dilationH, dilationW, mode, computeType))
DNN(cudnnSetConvolutionMathType, (cudnnConvolutionDescriptor_t d, cudnnMathType_t math), (d, math))
DNN(cudnnSetConvolutionGroupCount, (cudnnConvolutionDescriptor_t d, int groups), (d, groups))
DNN(cudnnFindConvolutionForwardAlgorithm,
    (cudnnHandle_t handle, const cudnnTensorDescriptor_t x, const cudnnFilterDescriptor_t w,
     const cudnnConvolutionDescriptor_t conv, const cudnnTensorDescriptor_t y, const int requested, int *returned,
     cudnnConvolutionFwdAlgoPerf_t *results),
    (handle, x, w, conv, y, requested, returned, results))
DNN(cudnnFindConvolutionBackwardDataAlgorithm,
    (cudnnHandle_t handle, const cudnnFilterDescriptor_t w, const cudnnTensorDescriptor_t dy,
     const cudnnConvolutionDescriptor_t conv, const cudnnTensorDescriptor_t dx, const int requested, int *returned,
     cudnnConvolutionBwdDataAlgoPerf_t *results),
    (handle, w, dy, conv, dx, requested, returned, results))
DNN(cudnnFindConvolutionBackwardFilterAlgorithm,
    (cudnnHandle_t handle, const cudnnTensorDescriptor_t x, const cudnnTensorDescriptor_t dy,
     const cudnnConvolutionDescriptor_t conv, const cudnnFilterDescriptor_t dw, const int requested, int *returned,
     cudnnConvolutionBwdFilterAlgoPerf_t *results),
    (handle, x, dy, conv, dw, requested, returned, results))
DNN(cudnnConvolutionForward,
    (cudnnHandle_t handle, const void *alpha, const cudnnTensorDescriptor_t xDesc, const void *x,
     const cudnnFilterDescriptor_t wDesc, const void *w, const cudnnConvolutionDescriptor_t conv,
     cudnnConvolutionFwdAlgo_t algo, void *workspace, size_t workspaceBytes, const void *beta,
     const cudnnTensorDescriptor_t yDesc, void *y),
    (handle, alpha, xDesc, x, wDesc, w, conv, algo, workspace, workspaceBytes, beta, yDesc, y))
DNN(cudnnConvolutionBackwardData,
    (cudnnHandle_t handle, const void *alpha, const cudnnFilterDescriptor_t wDesc, const void *w,
     const cudnnTensorDescriptor_t dyDesc, const void *dy, const cudnnConvolutionDescriptor_t conv,
     cudnnConvolutionBwdDataAlgo_t algo, void *workspace, size_t workspaceBytes, const void *beta,
     const cudnnTensorDescriptor_t dxDesc, void *dx),
    (handle, alpha, wDesc, w, dyDesc, dy, conv, algo, workspace, workspaceBytes, beta, dxDesc, dx))
DNN(cudnnConvolutionBackwardFilter,
    (cudnnHandle_t handle, const void *alpha, const cudnnTensorDescriptor_t xDesc, const void *x,
     const cudnnTensorDescriptor_t dyDesc, const void *dy, const cudnnConvolutionDescriptor_t conv,
     cudnnConvolutionBwdFilterAlgo_t algo, void *workspace, size_t workspaceBytes, const void *beta,
     const cudnnFilterDescriptor_t dwDesc, void *dw),
    (handle, alpha, xDesc, x, dyDesc, dy, conv, algo, workspace, workspaceBytes, beta, dwDesc, dw))
DNN(cudnnConvolutionBackwardBias,
    (cudnnHandle_t handle, const void *alpha, const cudnnTensorDescriptor_t dyDesc, const void *dy,
     const void *beta, const cudnnTensorDescriptor_t dbDesc, void *db),
    (handle, alpha, dyDesc, dy, beta, dbDesc, db))
DNN(cudnnAddTensor,
    (cudnnHandle_t handle, const void *alpha, const cudnnTensorDescriptor_t aDesc, const void *A,
     const void *beta, const cudnnTensorDescriptor_t cDesc, void *C),
    (handle, alpha, aDesc, A, beta, cDesc, C))
DNN(cudnnBatchNormalizationForwardTraining,
    (cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void *alpha, const void *beta,
     const cudnnTensorDescriptor_t xDesc, const void *x, const cudnnTensorDescriptor_t yDesc, void *y,
     const cudnnTensorDescriptor_t bnDesc, const void *scale, const void *bias, double averageFactor,
     void *runningMean, void *runningVariance, double epsilon, void *savedMean, void *savedInvVariance),
    (handle, mode, alpha, beta, xDesc, x, yDesc, y, bnDesc, scale, bias, averageFactor, runningMean,
     runningVariance, epsilon, savedMean, savedInvVariance))
DNN(cudnnBatchNormalizationForwardInference,
    (cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void *alpha, const void *beta,
     const cudnnTensorDescriptor_t xDesc, const void *x, const cudnnTensorDescriptor_t yDesc, void *y,
     const cudnnTensorDescriptor_t bnDesc, const void *scale, const void *bias, const void *mean,
     const void *variance, double epsilon),
    (handle, mode, alpha, beta, xDesc, x, yDesc, y, bnDesc, scale, bias, mean, variance, epsilon))
DNN(cudnnBatchNormalizationBackward,
    (cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void *alphaData, const void *betaData,
     const void *alphaParam, const void *betaParam, const cudnnTensorDescriptor_t xDesc, const void *x,
     const cudnnTensorDescriptor_t dyDesc, const void *dy, const cudnnTensorDescriptor_t dxDesc, void *dx,
     const cudnnTensorDescriptor_t bnDesc, const void *scale, void *dScale, void *dBias, double epsilon,
     const void *savedMean, const void *savedInvVariance),
    (handle, mode, alphaData, betaData, alphaParam, betaParam, xDesc, x, dyDesc, dy, dxDesc, dx, bnDesc,
     scale, dScale, dBias, epsilon, savedMean, savedInvVariance))

TEXT(CUDNN, cudnnGetErrorString, (cudnnStatus_t status), (status))

// MARK: NVRTC

RTC(nvrtcVersion, (int *major, int *minor), (major, minor))
RTC(nvrtcCreateProgram,
    (nvrtcProgram *program, const char *source, const char *name, int headerCount, const char *const *headers,
     const char *const *includeNames),
    (program, source, name, headerCount, headers, includeNames))
RTC(nvrtcCompileProgram, (nvrtcProgram program, int optionCount, const char *const *options),
    (program, optionCount, options))
RTC(nvrtcDestroyProgram, (nvrtcProgram *program), (program))
RTC(nvrtcGetProgramLogSize, (nvrtcProgram program, size_t *size), (program, size))
RTC(nvrtcGetProgramLog, (nvrtcProgram program, char *log), (program, log))
RTC(nvrtcGetCUBINSize, (nvrtcProgram program, size_t *size), (program, size))
RTC(nvrtcGetCUBIN, (nvrtcProgram program, char *cubin), (program, cubin))

TEXT(NVRTC, nvrtcGetErrorString, (nvrtcResult result), (result))

#endif
