// oneDNN's batch norm (plain and with its fused ReLU), ReLU and max pooling on channels-last data,
// at the shapes of a ResNet-20 step (batch 128) and a VGG-16 step (batch 64): the figures to hold
// against Strata's own CPU kernels (`strata bench train --profile`, bench/NOTES.md section 11).
//   cc -O2 bench/c/dnnl-bnpool.c -o /tmp/bnpool -ldnnl && OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive [FLUSH=1] /tmp/bnpool
// Per shape: the median of 25 calls (after 3 warm-up calls) per primitive; then the sum over one
// training step's calls (ResNet-20: 7 batch norms at 16x32x32, 6 at 32x16x16, 6 at 64x8x8, each
// followed by a ReLU in the profile's count; VGG-16: one 2x2 max pool per stage).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <oneapi/dnnl/dnnl.h>
#define CK(x) do { dnnl_status_t s_ = (x); if (s_ != dnnl_success) { fprintf(stderr, "%s: %d\n", #x, s_); exit(1); } } while (0)

static dnnl_engine_t eng;
static dnnl_stream_t st;
// Evicts the caches between calls (when FLUSH is set): in a training step a kernel's operands were
// last touched one or more layers earlier, not by the previous call of the same kernel.
static char *scratch;
static int flush_caches;
static void evict(void) { if (flush_caches) { for (size_t i = 0; i < (64u << 20); i += 64) scratch[i]++; } }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

static dnnl_memory_t mem(const dnnl_memory_desc_t *md) {
    dnnl_memory_t m; void *p;
    CK(dnnl_memory_create(&m, md, eng, DNNL_MEMORY_ALLOCATE));
    CK(dnnl_memory_get_data_handle(m, &p));
    size_t n = dnnl_memory_desc_get_size(md) / sizeof(float);
    for (size_t i = 0; i < n; i++) ((float *)p)[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f + 0.01f;
    return m;
}
// Whether x holds a NaN: the pass oneDNN's max pooling would need beside it to keep NaN visible
// (it drops NaN, bench/c/dnnl-pool-semantics.c). Four accumulators so that -O2 vectorises it.
static int has_nan(const float *x, size_t n) {
    unsigned a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) { a0 |= x[i] != x[i]; a1 |= x[i + 1] != x[i + 1]; a2 |= x[i + 2] != x[i + 2]; a3 |= x[i + 3] != x[i + 3]; }
    for (; i < n; i++) a0 |= x[i] != x[i];
    return (a0 | a1 | a2 | a3) != 0;
}
static double scan_ms(dnnl_memory_t m, size_t n) {
    void *p; CK(dnnl_memory_get_data_handle(m, &p));
    double t[25]; volatile int found = 0;
    for (int r = 0; r < 28; r++) {
        evict();
        double t0 = now(); found |= has_nan((const float *)p, n);
        if (r >= 3) t[r - 3] = (now() - t0) * 1e3;
    }
    qsort(t, 25, sizeof(double), cmp);
    return t[12];
}
static dnnl_memory_desc_t nhwc(int n, int c, int h, int w) {
    dnnl_memory_desc_t md; dnnl_dims_t d = {n, c, h, w};
    CK(dnnl_memory_desc_init_by_tag(&md, 4, d, dnnl_f32, dnnl_nhwc)); return md;
}
static dnnl_memory_desc_t vec(int c) {
    dnnl_memory_desc_t md; dnnl_dims_t d = {c};
    CK(dnnl_memory_desc_init_by_tag(&md, 1, d, dnnl_f32, dnnl_a)); return md;
}
// Median milliseconds of one execution of `pd` with the arguments given.
static double run(const_dnnl_op_desc_t od, const_dnnl_primitive_desc_t hint, int n, const int *args, dnnl_memory_t *mems, const char **impl) {
    dnnl_primitive_desc_t pd; dnnl_primitive_t p;
    CK(dnnl_primitive_desc_create(&pd, od, NULL, eng, hint));
    CK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, impl));
    CK(dnnl_primitive_create(&p, pd));
    dnnl_exec_arg_t a[12];
    for (int i = 0; i < n; i++) { a[i].arg = args[i]; a[i].memory = mems[i]; }
    double t[25];
    for (int r = 0; r < 28; r++) {
        evict();
        double t0 = now(); CK(dnnl_primitive_execute(p, st, n, a)); CK(dnnl_stream_wait(st));
        if (r >= 3) t[r - 3] = (now() - t0) * 1e3;
    }
    qsort(t, 25, sizeof(double), cmp);
    return t[12];
}

int main(void) {
    flush_caches = getenv("FLUSH") != NULL;
    scratch = calloc(64u << 20, 1);
    printf("caches %s between calls\n", flush_caches ? "evicted (64 MiB touched)" : "warm");
    CK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CK(dnnl_stream_create(&st, eng, dnnl_stream_default_flags));
    const char *impl;

    // ResNet-20 at batch 128: (channels, size, batch norms per step).
    int bn[3][3] = {{16, 32, 7}, {32, 16, 6}, {64, 8, 6}};
    double step[6] = {0};  // bn fwd, bn bwd, bn+relu fwd, bn+relu bwd, relu fwd, relu bwd
    printf("batch norm / ReLU, ResNet-20 shapes, batch 128, NHWC (median ms per call)\n");
    printf("%-14s %8s %8s %10s %10s %8s %8s  impl\n", "shape", "bn fwd", "bn bwd", "bnrelu fwd", "bnrelu bwd", "relu fwd", "relu bwd");
    for (int s = 0; s < 3; s++) {
        int C = bn[s][0], H = bn[s][1], calls = bn[s][2];
        dnnl_memory_desc_t x = nhwc(128, C, H, H), v = vec(C);
        double ms[6];
        for (int fuse = 0; fuse < 2; fuse++) {
            unsigned flags = dnnl_use_scale | dnnl_use_shift | (fuse ? dnnl_fuse_norm_relu : 0);
            dnnl_batch_normalization_desc_t fd, bd;
            CK(dnnl_batch_normalization_forward_desc_init(&fd, dnnl_forward_training, &x, 1e-5f, flags));
            dnnl_primitive_desc_t hint; CK(dnnl_primitive_desc_create(&hint, &fd, NULL, eng, NULL));
            dnnl_memory_t src = mem(&x), dst = mem(&x), mean = mem(&v), var = mem(&v), scale = mem(&v), shift = mem(&v);
            dnnl_memory_t ws = NULL;
            int nf = 6;
            int fa[7] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_SCALE, DNNL_ARG_SHIFT, DNNL_ARG_WORKSPACE};
            dnnl_memory_t fm[7] = {src, dst, mean, var, scale, shift, NULL};
            if (fuse) { ws = mem(dnnl_primitive_desc_query_md(hint, dnnl_query_workspace_md, 0)); fm[6] = ws; nf = 7; }
            ms[fuse ? 2 : 0] = run(&fd, NULL, nf, fa, fm, &impl);
            // The forward ran 28 times: mean and variance hold real statistics; the variance is positive.
            CK(dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, &x, &x, 1e-5f, flags));
            dnnl_memory_t dy = mem(&x), dx = mem(&x), dscale = mem(&v), dshift = mem(&v);
            int ba[10] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_SCALE, DNNL_ARG_SHIFT,
                          DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_SCALE, DNNL_ARG_DIFF_SHIFT, DNNL_ARG_WORKSPACE};
            dnnl_memory_t bm[10] = {src, dy, mean, var, scale, shift, dx, dscale, dshift, ws};
            ms[fuse ? 3 : 1] = run(&bd, hint, fuse ? 10 : 9, ba, bm, &impl);
        }
        {
            dnnl_eltwise_desc_t fd, bd;
            CK(dnnl_eltwise_forward_desc_init(&fd, dnnl_forward_training, dnnl_eltwise_relu, &x, 0, 0));
            dnnl_primitive_desc_t hint; CK(dnnl_primitive_desc_create(&hint, &fd, NULL, eng, NULL));
            dnnl_memory_t src = mem(&x), dst = mem(&x), dy = mem(&x), dx = mem(&x);
            int fa[2] = {DNNL_ARG_SRC, DNNL_ARG_DST}; dnnl_memory_t fm[2] = {src, dst};
            ms[4] = run(&fd, NULL, 2, fa, fm, &impl);
            CK(dnnl_eltwise_backward_desc_init(&bd, dnnl_eltwise_relu, &x, &x, 0, 0));
            int ba[3] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC}; dnnl_memory_t bm[3] = {src, dy, dx};
            ms[5] = run(&bd, hint, 3, ba, bm, &impl);
        }
        printf("%3dx%2dx%-2d x%d  %8.3f %8.3f %10.3f %10.3f %8.3f %8.3f  %s\n", C, H, H, calls, ms[0], ms[1], ms[2], ms[3], ms[4], ms[5], impl);
        for (int k = 0; k < 6; k++) step[k] += calls * ms[k];
    }
    printf("per ResNet-20 step (19 calls each), ms: bn fwd %.2f, bn bwd %.2f, bn+relu fwd %.2f, bn+relu bwd %.2f, relu fwd %.2f, relu bwd %.2f\n",
           step[0], step[1], step[2], step[3], step[4], step[5]);

    // VGG-16 at batch 64: max pool 2x2 stride 2 after each stage.
    // (channels, size, batch): VGG-16's five pools at batch 64, then the shapes of bench/Sources/layertime.
    int pool[9][3] = {{64, 32, 64}, {128, 16, 64}, {256, 8, 64}, {512, 4, 64}, {512, 2, 64},
                      {16, 32, 128}, {32, 16, 128}, {64, 8, 128}, {48, 32, 128}};
    double pf = 0, pb = 0;
    printf("\nmax pool 2x2/2, NHWC (median ms per call)\n");
    for (int s = 0; s < 9; s++) {
        int C = pool[s][0], H = pool[s][1], N = pool[s][2];
        if (s == 5) printf("per VGG-16 step (5 pools, batch 64), ms: fwd %.2f, bwd %.2f\n", pf, pb);
        dnnl_memory_desc_t x = nhwc(N, C, H, H), y = nhwc(N, C, H / 2, H / 2);
        dnnl_dims_t k = {2, 2}, str = {2, 2}, pad = {0, 0}, dil = {0, 0};
        dnnl_pooling_v2_desc_t fd, bd;
        CK(dnnl_pooling_v2_forward_desc_init(&fd, dnnl_forward_training, dnnl_pooling_max, &x, &y, str, k, dil, pad, pad));
        dnnl_primitive_desc_t hint; CK(dnnl_primitive_desc_create(&hint, &fd, NULL, eng, NULL));
        dnnl_memory_t src = mem(&x), dst = mem(&y), ws = mem(dnnl_primitive_desc_query_md(hint, dnnl_query_workspace_md, 0));
        int fa[3] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_WORKSPACE}; dnnl_memory_t fm[3] = {src, dst, ws};
        double f = run(&fd, NULL, 3, fa, fm, &impl);
        CK(dnnl_pooling_v2_backward_desc_init(&bd, dnnl_pooling_max, &x, &y, str, k, dil, pad, pad));
        dnnl_memory_t dy = mem(&y), dx = mem(&x);
        int ba[3] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WORKSPACE, DNNL_ARG_DIFF_SRC}; dnnl_memory_t bm[3] = {dy, ws, dx};
        double b = run(&bd, hint, 3, ba, bm, &impl);
        double scan = scan_ms(src, (size_t)N * C * H * H);
        // The same question asked of oneDNN: the sum of x is NaN or infinite when x holds NaN or an
        // infinity (or when the sum overflows: a false alarm that only costs time).
        dnnl_memory_desc_t one = nhwc(1, 1, 1, 1);
        dnnl_reduction_desc_t rd;
        CK(dnnl_reduction_desc_init(&rd, dnnl_reduction_sum, &x, &one, 0, 0));
        dnnl_memory_t total = mem(&one);
        int ra[2] = {DNNL_ARG_SRC, DNNL_ARG_DST}; dnnl_memory_t rm[2] = {src, total};
        const char *rimpl, *gimpl;
        double sum = run(&rd, NULL, 2, ra, rm, &rimpl);
        // Or per image and channel: oneDNN's average pooling over the whole image (N x C sums).
        dnnl_memory_desc_t nc = nhwc(N, C, 1, 1);
        dnnl_dims_t whole = {H, H}, zero = {0, 0};
        dnnl_pooling_v2_desc_t gd;
        CK(dnnl_pooling_v2_forward_desc_init(&gd, dnnl_forward_inference, dnnl_pooling_avg_include_padding, &x, &nc,
                                             whole, whole, dil, zero, zero));
        dnnl_memory_t means = mem(&nc);
        dnnl_memory_t gm[2] = {src, means};
        double global = run(&gd, NULL, 2, ra, gm, &gimpl);
        printf("%3dx%3dx%2dx%-2d  fwd %7.3f  bwd %7.3f  NaN scan of x %7.3f  oneDNN sum of x %7.3f (%s)  global avg pool %7.3f (%s)  %s\n",
               N, C, H, H, f, b, scan, sum, rimpl, global, gimpl, impl);
        pf += f; pb += b;
    }
    return 0;
}
