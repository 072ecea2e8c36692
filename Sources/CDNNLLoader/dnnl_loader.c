// Definitions of the oneDNN functions Strata calls, each forwarding to the real one in libdnnl.so.2,
// opened with dlopen on first use (CDNNLLoader.h says why). dnnl.h declares every stub below, so
// the compiler checks each parameter list against the real prototype. A stub whose library cannot
// be opened returns dnnl_runtime_error (or 0 / NULL); `strata_dnnl_load` is the call that says why.
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "CDNNLLoader.h"

static void *library;
static char failure[512];
static pthread_once_t loadOnce = PTHREAD_ONCE_INIT;

static void load(void) {
    // libgomp reads its wait policy once, when it is loaded (here, as libdnnl's dependency).
    // Spinning idle threads (300,000 `pause` loops, 10-20 ms on Sapphire Rapids) took the cores
    // from the rest of a training step: ResNet-20 ran 2-4x slower. A user's choice stands.
    if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT")) setenv("OMP_WAIT_POLICY", "passive", 0);
    library = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_GLOBAL);
    if (!library) {
        const char *reason = dlerror();
        snprintf(failure, sizeof failure, "libdnnl.so.2 (%s); install it with `apt-get install libdnnl2` "
                 "(or `make deps`)", reason ? reason : "not found");
    }
}

int strata_dnnl_load(char *message, int capacity) {
    pthread_once(&loadOnce, load);
    if (library) return 0;
    if (message && capacity > 0) snprintf(message, (size_t)capacity, "%s", failure);
    return -1;
}

static void *symbol(const char *name) {
    pthread_once(&loadOnce, load);
    return library ? dlsym(library, name) : NULL;
}

#define FORWARD(ret, name, params, args, failed)                     \
    ret name params {                                                \
        static ret(*function) params;                                \
        if (!function) function = (ret(*) params)symbol(#name);      \
        if (!function) return failed;                                \
        return function args;                                        \
    }

FORWARD(dnnl_status_t, dnnl_memory_desc_init_by_tag, (dnnl_memory_desc_t *memory_desc, int ndims, const dnnl_dims_t dims, dnnl_data_type_t data_type, dnnl_format_tag_t tag), (memory_desc, ndims, dims, data_type, tag), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_engine_create, (dnnl_engine_t *engine, dnnl_engine_kind_t kind, size_t index), (engine, kind, index), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_stream_create, (dnnl_stream_t *stream, dnnl_engine_t engine, unsigned flags), (stream, engine, flags), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_stream_destroy, (dnnl_stream_t stream), (stream), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_engine_destroy, (dnnl_engine_t engine), (engine), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_primitive_execute, (const_dnnl_primitive_t primitive, dnnl_stream_t stream, int nargs, const dnnl_exec_arg_t *args), (primitive, stream, nargs, args), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_stream_wait, (dnnl_stream_t stream), (stream), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_memory_create, (dnnl_memory_t *memory, const dnnl_memory_desc_t *memory_desc, dnnl_engine_t engine, void *handle), (memory, memory_desc, engine, handle), dnnl_runtime_error)
FORWARD(size_t, dnnl_memory_desc_get_size, (const dnnl_memory_desc_t *memory_desc), (memory_desc), 0)
FORWARD(dnnl_status_t, dnnl_primitive_attr_create, (dnnl_primitive_attr_t *attr), (attr), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_primitive_attr_destroy, (dnnl_primitive_attr_t attr), (attr), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_post_ops_create, (dnnl_post_ops_t *post_ops), (post_ops), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_post_ops_append_sum, (dnnl_post_ops_t post_ops, float scale), (post_ops, scale), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_primitive_attr_set_post_ops, (dnnl_primitive_attr_t attr, const_dnnl_post_ops_t post_ops), (attr, post_ops), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_post_ops_destroy, (dnnl_post_ops_t post_ops), (post_ops), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_reorder_primitive_desc_create, (dnnl_primitive_desc_t *reorder_primitive_desc, const dnnl_memory_desc_t *src_desc, dnnl_engine_t src_engine, const dnnl_memory_desc_t *dst_desc, dnnl_engine_t dst_engine, const_dnnl_primitive_attr_t attr), (reorder_primitive_desc, src_desc, src_engine, dst_desc, dst_engine, attr), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_primitive_desc_destroy, (dnnl_primitive_desc_t primitive_desc), (primitive_desc), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_primitive_create, (dnnl_primitive_t *primitive, const_dnnl_primitive_desc_t primitive_desc), (primitive, primitive_desc), dnnl_runtime_error)
FORWARD(int, dnnl_memory_desc_equal, (const dnnl_memory_desc_t *lhs, const dnnl_memory_desc_t *rhs), (lhs, rhs), 0)
FORWARD(dnnl_status_t, dnnl_primitive_destroy, (dnnl_primitive_t primitive), (primitive), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_memory_destroy, (dnnl_memory_t memory), (memory), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_memory_set_data_handle, (dnnl_memory_t memory, void *handle), (memory, handle), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_convolution_forward_desc_init, (dnnl_convolution_desc_t *conv_desc, dnnl_prop_kind_t prop_kind, dnnl_alg_kind_t alg_kind, const dnnl_memory_desc_t *src_desc, const dnnl_memory_desc_t *weights_desc, const dnnl_memory_desc_t *bias_desc, const dnnl_memory_desc_t *dst_desc, const dnnl_dims_t strides, const dnnl_dims_t padding_l, const dnnl_dims_t padding_r), (conv_desc, prop_kind, alg_kind, src_desc, weights_desc, bias_desc, dst_desc, strides, padding_l, padding_r), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_primitive_desc_create, (dnnl_primitive_desc_t *primitive_desc, const_dnnl_op_desc_t op_desc, const_dnnl_primitive_attr_t attr, dnnl_engine_t engine, const_dnnl_primitive_desc_t hint_forward_primitive_desc), (primitive_desc, op_desc, attr, engine, hint_forward_primitive_desc), dnnl_runtime_error)
FORWARD(const dnnl_memory_desc_t *, dnnl_primitive_desc_query_md, (const_dnnl_primitive_desc_t primitive_desc, dnnl_query_t what, int index), (primitive_desc, what, index), NULL)
FORWARD(dnnl_status_t, dnnl_primitive_desc_query, (const_dnnl_primitive_desc_t primitive_desc, dnnl_query_t what, int index, void *result), (primitive_desc, what, index, result), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_primitive_desc_iterator_create, (dnnl_primitive_desc_iterator_t *iterator, const_dnnl_op_desc_t op_desc, const_dnnl_primitive_attr_t attr, dnnl_engine_t engine, const_dnnl_primitive_desc_t hint_forward_primitive_desc), (iterator, op_desc, attr, engine, hint_forward_primitive_desc), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_primitive_desc_iterator_next, (dnnl_primitive_desc_iterator_t iterator), (iterator), dnnl_runtime_error)
FORWARD(dnnl_primitive_desc_t, dnnl_primitive_desc_iterator_fetch, (const_dnnl_primitive_desc_iterator_t iterator), (iterator), NULL)
FORWARD(dnnl_status_t, dnnl_primitive_desc_iterator_destroy, (dnnl_primitive_desc_iterator_t iterator), (iterator), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_convolution_backward_data_desc_init, (dnnl_convolution_desc_t *conv_desc, dnnl_alg_kind_t alg_kind, const dnnl_memory_desc_t *diff_src_desc, const dnnl_memory_desc_t *weights_desc, const dnnl_memory_desc_t *diff_dst_desc, const dnnl_dims_t strides, const dnnl_dims_t padding_l, const dnnl_dims_t padding_r), (conv_desc, alg_kind, diff_src_desc, weights_desc, diff_dst_desc, strides, padding_l, padding_r), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_convolution_backward_weights_desc_init, (dnnl_convolution_desc_t *conv_desc, dnnl_alg_kind_t alg_kind, const dnnl_memory_desc_t *src_desc, const dnnl_memory_desc_t *diff_weights_desc, const dnnl_memory_desc_t *diff_bias_desc, const dnnl_memory_desc_t *diff_dst_desc, const dnnl_dims_t strides, const dnnl_dims_t padding_l, const dnnl_dims_t padding_r), (conv_desc, alg_kind, src_desc, diff_weights_desc, diff_bias_desc, diff_dst_desc, strides, padding_l, padding_r), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_sgemm, (char transa, char transb, dnnl_dim_t M, dnnl_dim_t N, dnnl_dim_t K, float alpha, const float *A, dnnl_dim_t lda, const float *B, dnnl_dim_t ldb, float beta, float *C, dnnl_dim_t ldc), (transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc), dnnl_runtime_error)
FORWARD(dnnl_cpu_isa_t, dnnl_get_effective_cpu_isa, (void), (), dnnl_cpu_isa_all)
FORWARD(dnnl_status_t, dnnl_pooling_v2_forward_desc_init, (dnnl_pooling_v2_desc_t *pool_desc, dnnl_prop_kind_t prop_kind, dnnl_alg_kind_t alg_kind, const dnnl_memory_desc_t *src_desc, const dnnl_memory_desc_t *dst_desc, const dnnl_dims_t strides, const dnnl_dims_t kernel, const dnnl_dims_t dilation, const dnnl_dims_t padding_l, const dnnl_dims_t padding_r), (pool_desc, prop_kind, alg_kind, src_desc, dst_desc, strides, kernel, dilation, padding_l, padding_r), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_pooling_v2_backward_desc_init, (dnnl_pooling_v2_desc_t *pool_desc, dnnl_alg_kind_t alg_kind, const dnnl_memory_desc_t *diff_src_desc, const dnnl_memory_desc_t *diff_dst_desc, const dnnl_dims_t strides, const dnnl_dims_t kernel, const dnnl_dims_t dilation, const dnnl_dims_t padding_l, const dnnl_dims_t padding_r), (pool_desc, alg_kind, diff_src_desc, diff_dst_desc, strides, kernel, dilation, padding_l, padding_r), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_matmul_desc_init, (dnnl_matmul_desc_t *matmul_desc, const dnnl_memory_desc_t *src_desc, const dnnl_memory_desc_t *weights_desc, const dnnl_memory_desc_t *bias_desc, const dnnl_memory_desc_t *dst_desc), (matmul_desc, src_desc, weights_desc, bias_desc, dst_desc), dnnl_runtime_error)
FORWARD(dnnl_status_t, dnnl_primitive_attr_set_output_scales, (dnnl_primitive_attr_t attr, dnnl_dim_t count, int mask, const float *scales), (attr, count, mask, scales), dnnl_runtime_error)
