// oneDNN 2.6's batch normalization (NHWC f32, training, scale + shift, with and without its fused
// ReLU) against Strata's contract: NaN through the normalisation and the fused ReLU, the fused
// ReLU's workspace, accuracy of the statistics on activations with a large mean (float64
// reference), and a bit hash of every output so that runs at OMP_NUM_THREADS=1 and 2 can be compared.
//   cc -O2 bench/c/dnnl-bn-semantics.c -o /tmp/bnsem -ldnnl -lm
//   OMP_NUM_THREADS=1 /tmp/bnsem > /tmp/bn1.txt; OMP_NUM_THREADS=2 /tmp/bnsem > /tmp/bn2.txt; diff /tmp/bn1.txt /tmp/bn2.txt
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <oneapi/dnnl/dnnl.h>
#define CK(x) do { dnnl_status_t s_ = (x); if (s_ != dnnl_success) { fprintf(stderr, "%s: %d\n", #x, s_); exit(1); } } while (0)

static dnnl_engine_t eng;
static dnnl_stream_t st;

static uint64_t hash(const void *p, size_t bytes) {  // FNV-1a over the bits
    const unsigned char *b = p; uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < bytes; i++) { h ^= b[i]; h *= 1099511628211ull; }
    return h;
}

static uint32_t rng = 12345;
static float uniform(void) { rng = rng * 1664525u + 1013904223u; return (float)((rng >> 8) * (1.0 / 16777216.0)); }

typedef struct { float *y, *mean, *var, *dx, *dscale, *dshift; unsigned char *ws; size_t wsbytes; const char *fimpl, *bimpl; } result;

// Forward training + backward (diffs of x, scale and shift) on an N x C x H x W NHWC tensor.
static result run(int N, int C, int H, int W, unsigned relu, const float *x, const float *dy, const float *scale, const float *shift) {
    result r; size_t n = (size_t)N * C * H * W;
    dnnl_memory_desc_t md, cmd; dnnl_dims_t d = {N, C, H, W}, cd = {C};
    CK(dnnl_memory_desc_init_by_tag(&md, 4, d, dnnl_f32, dnnl_nhwc));
    CK(dnnl_memory_desc_init_by_tag(&cmd, 1, cd, dnnl_f32, dnnl_a));
    unsigned flags = dnnl_use_scale | dnnl_use_shift | relu;
    dnnl_batch_normalization_desc_t fd, bd;
    CK(dnnl_batch_normalization_forward_desc_init(&fd, dnnl_forward_training, &md, 1e-5f, flags));
    dnnl_primitive_desc_t fpd; CK(dnnl_primitive_desc_create(&fpd, &fd, NULL, eng, NULL));
    CK(dnnl_primitive_desc_query(fpd, dnnl_query_impl_info_str, 0, &r.fimpl));
    const dnnl_memory_desc_t *wsmd = dnnl_primitive_desc_query_md(fpd, dnnl_query_workspace_md, 0);
    r.wsbytes = wsmd ? dnnl_memory_desc_get_size(wsmd) : 0;
    r.y = calloc(n, 4); r.mean = calloc(C, 4); r.var = calloc(C, 4); r.dx = calloc(n, 4);
    r.dscale = calloc(C, 4); r.dshift = calloc(C, 4); r.ws = calloc(r.wsbytes + 64, 1);
    dnnl_memory_t mx, my, mm, mv, msc, msh, mw = NULL, mdy, mdx, mdsc, mdsh;
    CK(dnnl_memory_create(&mx, &md, eng, (void *)x)); CK(dnnl_memory_create(&my, &md, eng, r.y));
    CK(dnnl_memory_create(&mm, &cmd, eng, r.mean)); CK(dnnl_memory_create(&mv, &cmd, eng, r.var));
    CK(dnnl_memory_create(&msc, &cmd, eng, (void *)scale)); CK(dnnl_memory_create(&msh, &cmd, eng, (void *)shift));
    if (r.wsbytes) CK(dnnl_memory_create(&mw, wsmd, eng, r.ws));
    dnnl_primitive_t fp; CK(dnnl_primitive_create(&fp, fpd));
    dnnl_exec_arg_t fa[7] = {{DNNL_ARG_SRC, mx}, {DNNL_ARG_DST, my}, {DNNL_ARG_MEAN, mm}, {DNNL_ARG_VARIANCE, mv},
                             {DNNL_ARG_SCALE, msc}, {DNNL_ARG_SHIFT, msh}, {DNNL_ARG_WORKSPACE, mw}};
    CK(dnnl_primitive_execute(fp, st, r.wsbytes ? 7 : 6, fa)); CK(dnnl_stream_wait(st));
    CK(dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, &md, &md, 1e-5f, flags));
    dnnl_primitive_desc_t bpd; CK(dnnl_primitive_desc_create(&bpd, &bd, NULL, eng, fpd));
    CK(dnnl_primitive_desc_query(bpd, dnnl_query_impl_info_str, 0, &r.bimpl));
    CK(dnnl_memory_create(&mdy, &md, eng, (void *)dy)); CK(dnnl_memory_create(&mdx, &md, eng, r.dx));
    CK(dnnl_memory_create(&mdsc, &cmd, eng, r.dscale)); CK(dnnl_memory_create(&mdsh, &cmd, eng, r.dshift));
    dnnl_primitive_t bp; CK(dnnl_primitive_create(&bp, bpd));
    dnnl_exec_arg_t ba[10] = {{DNNL_ARG_SRC, mx}, {DNNL_ARG_DIFF_DST, mdy}, {DNNL_ARG_MEAN, mm}, {DNNL_ARG_VARIANCE, mv},
                              {DNNL_ARG_SCALE, msc}, {DNNL_ARG_SHIFT, msh}, {DNNL_ARG_DIFF_SRC, mdx},
                              {DNNL_ARG_DIFF_SCALE, mdsc}, {DNNL_ARG_DIFF_SHIFT, mdsh}, {DNNL_ARG_WORKSPACE, mw}};
    CK(dnnl_primitive_execute(bp, st, r.wsbytes ? 10 : 9, ba)); CK(dnnl_stream_wait(st));
    return r;
}

static void fill(float *a, size_t n, float offset, float spread) { for (size_t i = 0; i < n; i++) a[i] = offset + spread * (uniform() * 2 - 1); }

int main(void) {
    CK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CK(dnnl_stream_create(&st, eng, dnnl_stream_default_flags));
    // 1. Bit hashes at ResNet-20's shapes (batch 128) and VGG's, with and without the fused ReLU.
    int shapes[][4] = {{128, 16, 32, 32}, {128, 32, 16, 16}, {128, 64, 8, 8}, {64, 512, 4, 4}, {64, 3, 5, 7}};
    for (int s = 0; s < 5; s++) for (int relu = 0; relu < 2; relu++) {
        int N = shapes[s][0], C = shapes[s][1], H = shapes[s][2], W = shapes[s][3];
        size_t n = (size_t)N * C * H * W;
        float *x = malloc(n * 4), *dy = malloc(n * 4), *sc = malloc(C * 4), *sh = malloc(C * 4);
        rng = 7; fill(x, n, 0.3f, 2); fill(dy, n, 0, 1); fill(sc, C, 1, 0.5f); fill(sh, C, 0, 0.5f);
        result r = run(N, C, H, W, relu ? dnnl_fuse_norm_relu : 0, x, dy, sc, sh);
        if (relu) {  // is the workspace one bit per element of y, in y's order, set exactly where y > 0?
            size_t wrong = 0;
            for (size_t i = 0; i < n; i++) wrong += ((r.ws[i / 8] >> (i % 8)) & 1) != (r.y[i] > 0);
            printf("  workspace bits != (y > 0): %zu of %zu\n", wrong, n);
        }
        printf("%dx%dx%dx%d relu=%d  fwd %s bwd %s ws %zu B  mean %016llx var %016llx y %016llx dx %016llx dscale %016llx dshift %016llx\n",
               N, C, H, W, relu, r.fimpl, r.bimpl, r.wsbytes,
               (unsigned long long)hash(r.mean, C * 4), (unsigned long long)hash(r.var, C * 4), (unsigned long long)hash(r.y, n * 4),
               (unsigned long long)hash(r.dx, n * 4), (unsigned long long)hash(r.dscale, C * 4), (unsigned long long)hash(r.dshift, C * 4));
        free(x); free(dy); free(sc); free(sh);
    }
    // 1b. Fused against unfused: y against max(plain y, 0); the fused backward against the plain one
    //     with dy masked by (y > 0) first (how the unfused composition runs it).
    for (int s = 0; s < 5; s++) {
        int N = shapes[s][0], C = shapes[s][1], H = shapes[s][2], W = shapes[s][3];
        size_t n = (size_t)N * C * H * W;
        float *x = malloc(n * 4), *dy = malloc(n * 4), *sc = malloc(C * 4), *sh = malloc(C * 4);
        rng = 7; fill(x, n, 0.3f, 2); fill(dy, n, 0, 1); fill(sc, C, 1, 0.5f); fill(sh, C, 0, 0.5f);
        result f = run(N, C, H, W, dnnl_fuse_norm_relu, x, dy, sc, sh), u0 = run(N, C, H, W, 0, x, dy, sc, sh);
        size_t ydiff = 0, dxdiff = 0, pdiff = 0;
        for (size_t i = 0; i < n; i++) { float r = u0.y[i] < 0 ? 0 : u0.y[i]; ydiff += memcmp(&r, &f.y[i], 4) != 0; dy[i] = u0.y[i] > 0 ? dy[i] : 0; }
        result u = run(N, C, H, W, 0, x, dy, sc, sh);
        for (size_t i = 0; i < n; i++) dxdiff += memcmp(&u.dx[i], &f.dx[i], 4) != 0;
        for (int c = 0; c < C; c++) pdiff += (memcmp(&u.dscale[c], &f.dscale[c], 4) != 0) + (memcmp(&u.dshift[c], &f.dshift[c], 4) != 0);
        printf("fused vs unfused %dx%dx%dx%d: y bits differ %zu of %zu, dx %zu of %zu, dgamma+dbeta %zu of %d\n",
               N, C, H, W, ydiff, n, dxdiff, n, pdiff, 2 * C);
        free(x); free(dy); free(sc); free(sh);
    }
    // 2. NaN: channel 0 has one NaN in x; channel 1 has one NaN in dy; channel 2 has gamma NaN-free but
    //    x all negative after the shift (ReLU mask all zero); NaN in x at channel 3 with the ReLU.
    {
        int N = 4, C = 16, H = 3, W = 3; size_t n = (size_t)N * C * H * W;
        float *x = malloc(n * 4), *dy = malloc(n * 4), *sc = malloc(C * 4), *sh = malloc(C * 4);
        rng = 3; fill(x, n, 0, 1); fill(dy, n, 0, 1); fill(sc, C, 1, 0.5f); fill(sh, C, 0, 0.2f);
        x[5 * C + 0] = NAN; dy[7 * C + 1] = NAN; sh[2] = -100;
        for (int relu = 0; relu < 2; relu++) {
            result r = run(N, C, H, W, relu ? dnnl_fuse_norm_relu : 0, x, dy, sc, sh);
            printf("NaN case relu=%d (fwd %s, bwd %s):\n", relu, r.fimpl, r.bimpl);
            for (int c = 0; c < 3; c++) {
                int nany = 0, nandx = 0, zeroy = 0;
                for (size_t q = 0; q < n / C; q++) { nany += isnan(r.y[q * C + c]); nandx += isnan(r.dx[q * C + c]); zeroy += r.y[q * C + c] == 0; }
                printf("  channel %d: mean %g var %g  y NaN %d/%zu zero %d  dx NaN %d  dscale %g dshift %g  y[0] %g\n",
                       c, r.mean[c], r.var[c], nany, n / C, zeroy, nandx, r.dscale[c], r.dshift[c], r.y[c]);
            }
        }
        free(x); free(dy); free(sc); free(sh);
    }
    // 3. Large mean: x = 1000 + U(-1, 1) per channel; mean and variance against float64.
    {
        int N = 128, C = 16, H = 32, W = 32; size_t n = (size_t)N * C * H * W, m = n / C;
        float *x = malloc(n * 4), *dy = malloc(n * 4), *sc = malloc(C * 4), *sh = malloc(C * 4);
        rng = 11; fill(x, n, 1000, 1); fill(dy, n, 0, 1); fill(sc, C, 1, 0); fill(sh, C, 0, 0);
        result r = run(N, C, H, W, 0, x, dy, sc, sh);
        double worstm = 0, worstv = 0;
        for (int c = 0; c < C; c++) {
            double s = 0, s2 = 0;
            for (size_t q = 0; q < m; q++) s += x[q * C + c];
            double mu = s / m;
            for (size_t q = 0; q < m; q++) { double e = x[q * C + c] - mu; s2 += e * e; }
            double v = s2 / m;
            if (fabs(r.mean[c] - mu) > worstm) worstm = fabs(r.mean[c] - mu);
            if (fabs(r.var[c] - v) / v > worstv) worstv = fabs(r.var[c] - v) / v;
        }
        printf("large mean 1000 +- 1, 128x16x32x32: worst |mean - ref| %.3g, worst relative variance error %.3g\n", worstm, worstv);
    }
    return 0;
}
