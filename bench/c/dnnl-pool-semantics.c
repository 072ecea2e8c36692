// oneDNN's max pooling on ties and NaN, against Strata's contract (first row-major maximum wins,
// NaN wins, -infinity padding): forward values, the workspace and the backward's routing, per
// implementation oneDNN picks for NHWC f32, at the geometries our models use.
//   cc -O2 bench/c/dnnl-pool-semantics.c -o /tmp/poolsem -ldnnl && /tmp/poolsem
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <oneapi/dnnl/dnnl.h>
#define CK(x) do { dnnl_status_t s_ = (x); if (s_ != dnnl_success) { fprintf(stderr, "%s: %d\n", #x, s_); exit(1); } } while (0)

static dnnl_engine_t eng;
static dnnl_stream_t st;

static dnnl_memory_desc_t nhwc(int n, int c, int h, int w) {
    dnnl_memory_desc_t md; dnnl_dims_t d = {n, c, h, w};
    CK(dnnl_memory_desc_init_by_tag(&md, 4, d, dnnl_f32, dnnl_nhwc)); return md;
}

// One case: N=1, C channels, HxW, window k, stride s, pad p; x filled by `fill`.
static void run_case(const char *label, int C, int H, int k, int s, int p, void (*fill)(float *, int, int, int)) {
    int OH = (H + 2 * p - k) / s + 1;
    dnnl_memory_desc_t x = nhwc(1, C, H, H), y = nhwc(1, C, OH, OH);
    dnnl_dims_t kk = {k, k}, str = {s, s}, pl = {p, p}, dil = {0, 0};
    dnnl_dims_t pr = {(OH - 1) * s + k - H - p, (OH - 1) * s + k - H - p};
    dnnl_pooling_v2_desc_t fd, bd;
    CK(dnnl_pooling_v2_forward_desc_init(&fd, dnnl_forward_training, dnnl_pooling_max, &x, &y, str, kk, dil, pl, pr));
    dnnl_primitive_desc_t fpd; CK(dnnl_primitive_desc_create(&fpd, &fd, NULL, eng, NULL));
    const char *impl; CK(dnnl_primitive_desc_query(fpd, dnnl_query_impl_info_str, 0, &impl));
    const dnnl_memory_desc_t *wsmd = dnnl_primitive_desc_query_md(fpd, dnnl_query_workspace_md, 0);
    size_t wsbytes = dnnl_memory_desc_get_size(wsmd);
    float *xs = calloc(C * H * H, 4), *ys = calloc(C * OH * OH, 4), *dy = calloc(C * OH * OH, 4), *dx = calloc(C * H * H, 4);
    unsigned char *ws = calloc(wsbytes + 64, 1);
    fill(xs, C, H, H);
    dnnl_memory_t mx, my, mw, mdy, mdx;
    CK(dnnl_memory_create(&mx, &x, eng, xs)); CK(dnnl_memory_create(&my, &y, eng, ys));
    CK(dnnl_memory_create(&mw, wsmd, eng, ws)); CK(dnnl_memory_create(&mdy, &y, eng, dy)); CK(dnnl_memory_create(&mdx, &x, eng, dx));
    dnnl_primitive_t fp; CK(dnnl_primitive_create(&fp, fpd));
    dnnl_exec_arg_t fa[3] = {{DNNL_ARG_SRC, mx}, {DNNL_ARG_DST, my}, {DNNL_ARG_WORKSPACE, mw}};
    CK(dnnl_primitive_execute(fp, st, 3, fa)); CK(dnnl_stream_wait(st));
    for (int i = 0; i < C * OH * OH; i++) dy[i] = 1 + i;
    CK(dnnl_pooling_v2_backward_desc_init(&bd, dnnl_pooling_max, &x, &y, str, kk, dil, pl, pr));
    dnnl_primitive_desc_t bpd; CK(dnnl_primitive_desc_create(&bpd, &bd, NULL, eng, fpd));
    const char *bimpl; CK(dnnl_primitive_desc_query(bpd, dnnl_query_impl_info_str, 0, &bimpl));
    dnnl_primitive_t bp; CK(dnnl_primitive_create(&bp, bpd));
    dnnl_exec_arg_t ba[3] = {{DNNL_ARG_DIFF_DST, mdy}, {DNNL_ARG_WORKSPACE, mw}, {DNNL_ARG_DIFF_SRC, mdx}};
    CK(dnnl_primitive_execute(bp, st, 3, ba)); CK(dnnl_stream_wait(st));
    printf("== %s: C=%d H=%d k=%d s=%d p=%d  fwd %s, bwd %s, workspace %zu bytes (dt %d) for %d outputs\n",
           label, C, H, k, s, p, impl, bimpl, wsbytes, (int)wsmd->data_type, C * OH * OH);
    int show = C < 3 ? C : 3;
    for (int c = 0; c < show; c++) {
        printf(" channel %d  y:", c);
        for (int o = 0; o < OH * OH; o++) printf(" %g", ys[o * C + c]);
        printf("\n   ws:");
        for (int o = 0; o < OH * OH && wsmd->data_type == dnnl_u8; o++) printf(" %d", ws[o * C + c]);
        printf("\n   dx nonzero at (pixel:value):");
        for (int q = 0; q < H * H; q++) if (dx[q * C + c] != 0) printf(" %d:%g", q, dx[q * C + c]);
        printf("\n");
    }
}

static void constant(float *x, int C, int H, int W) { for (int i = 0; i < C * H * W; i++) x[i] = 0.5f; }
static void with_nan(float *x, int C, int H, int W) {
    for (int q = 0; q < H * W; q++) for (int c = 0; c < C; c++) x[q * C + c] = (float)((q * 7 + c * 3) % 11);
    // channel 0: NaN at pixel 1 (window 0 of a 2x2/2 pool); channel 1: every input NaN.
    x[1 * C + 0] = NAN;
    for (int q = 0; q < H * W; q++) x[q * C + 1] = NAN;
    // channel 2: NaN at pixel 0, the window's first element.
    x[0 * C + 2] = NAN;
}
static void negative(float *x, int C, int H, int W) { for (int i = 0; i < C * H * W; i++) x[i] = -1e30f - (float)(i % 5); }
static void minus_inf(float *x, int C, int H, int W) { for (int i = 0; i < C * H * W; i++) x[i] = -INFINITY; }

int main(void) {
    CK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CK(dnnl_stream_create(&st, eng, dnnl_stream_default_flags));
    int channels[3] = {3, 16, 48};
    for (int i = 0; i < 3; i++) {
        int C = channels[i];
        run_case("ties 2x2/2", C, 4, 2, 2, 0, constant);
        run_case("ties 3x3/2 pad 1", C, 5, 3, 2, 1, constant);
        run_case("ties 3x3/1", C, 4, 3, 1, 0, constant);
        run_case("NaN 2x2/2", C, 4, 2, 2, 0, with_nan);
        run_case("NaN 3x3/2 pad 1", C, 5, 3, 2, 1, with_nan);
        run_case("-1e30 3x3/2 pad 1", C, 5, 3, 2, 1, negative);
        run_case("-inf 2x2/2", C, 4, 2, 2, 0, minus_inf);
    }
    return 0;
}
