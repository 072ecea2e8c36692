#if CUDA
import Foundation
import XCTest
@testable import GPUTensor

/// The NVRTC kernels run on the HOST, without a GPU: `CUDAKernelSource.text` is plain C++ once
/// `__global__`, `__shared__` and the thread indices are defined, and a one-thread "launch" runs
/// each grid-stride loop over every element. This checks each channels-last (`_nhwc`) kernel
/// against its NCHW twin, bit for bit, on the same logical data (the NCHW kernels are checked
/// against the CPU backend on a GPU by `selftest --device cuda`), and the layout permutes against
/// an independent host permute. The channels-last batch norm and bias backward kernels
/// (CUDAChannelReductions.swift) run against a float64 reference, with blocks of real threads so
/// that `__syncthreads` and `__shared__` mean what they mean on a GPU. Skipped when no C++
/// compiler is installed.
final class CUDAKernelHostTests: XCTestCase {
    /// Makes the CUDA source compile as host C++.
    static let hostPrelude = #"""
#include <math.h>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <vector>
#include <algorithm>
#include <atomic>
#include <thread>
struct HostDim { unsigned x; };
static HostDim blockIdx = {0}, blockDim = {1}, gridDim = {1};
static thread_local HostDim threadIdx = {0};
// __syncthreads for the real threads of one emulated block (count 1: a no-op): a
// sense-reversing barrier that yields while it waits.
struct HostBarrier {
    unsigned count = 1;
    std::atomic<unsigned> waiting{0}, generation{0};
    void wait() {
        if (count == 1) return;
        unsigned g = generation.load();
        if (waiting.fetch_add(1) + 1 == count) { waiting.store(0); generation.fetch_add(1); }
        else while (generation.load() == g) std::this_thread::yield();
    }
};
static HostBarrier hostBarrier;
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __syncthreads() hostBarrier.wait()
static inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
static inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
static inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
using std::min; using std::max;

"""#

    /// Every `_nhwc` kernel against its NCHW twin over several shapes; prints one line per check.
    static let harness = #"""

typedef std::vector<float> V;
static int failures = 0, checks = 0;

static void check(const char* name, const V& want, const V& got) {
    checks++;
    if (want.size() != got.size()) { printf("MISMATCH %s: %zu vs %zu values\n", name, want.size(), got.size()); failures++; return; }
    for (size_t i = 0; i < want.size(); ++i)
        if (std::memcmp(&want[i], &got[i], 4) != 0) {
            printf("MISMATCH %s at %zu: %.9g vs %.9g\n", name, i, want[i], got[i]); failures++; return;
        }
}

// Independent of the kernels: logical (n, c, hw) row-major -> channels-last.
static V toNHWC(const V& x, i64 n, i64 c, i64 hw) {
    V y(x.size());
    for (i64 i = 0; i < n; ++i) for (i64 ch = 0; ch < c; ++ch) for (i64 p = 0; p < hw; ++p)
        y[(i * hw + p) * c + ch] = x[(i * c + ch) * hw + p];
    return y;
}

// levels > 0: small integers, so pooling windows hold ties.
static V values(size_t count, unsigned seed, int levels) {
    V v(count); srand(seed);
    for (auto& x : v) x = levels > 0 ? (float)(rand() % levels) : (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
    return v;
}

static void shape(i64 n, i64 c, i64 h, i64 w) {
    i64 hw = h * w, total = n * c * hw;
    V x = values(total, (unsigned)(n * 1000 + c * 100 + h * 10 + w), 0), xn = toNHWC(x, n, c, hw);

    { V y(total), z(total);
      nchw_to_nhwc(x.data(), y.data(), n, c, hw); check("nchw_to_nhwc", xn, y);
      nhwc_to_nchw(xn.data(), z.data(), n, c, hw); check("nhwc_to_nchw", x, z); }

    { V a(total), b(total);
      fill_uniform(a.data(), total, -0.5f, 2.0f, 7, 3); fill_uniform_nhwc(b.data(), total, c, hw, -0.5f, 2.0f, 7, 3);
      check("fill_uniform_nhwc", toNHWC(a, n, c, hw), b);
      fill_normal(a.data(), total, 0.1f, 0.7f, 9, 5); fill_normal_nhwc(b.data(), total, c, hw, 0.1f, 0.7f, 9, 5);
      check("fill_normal_nhwc", toNHWC(a, n, c, hw), b); }

    { V y(total), m(total), yn(total), mn(total);
      dropout_forward(x.data(), y.data(), m.data(), total, 0.3f, 1.0f / 0.7f, 11, 2);
      dropout_forward_nhwc(xn.data(), yn.data(), mn.data(), total, c, hw, 0.3f, 1.0f / 0.7f, 11, 2);
      check("dropout_forward_nhwc (y)", toNHWC(y, n, c, hw), yn);
      check("dropout_forward_nhwc (mask)", toNHWC(m, n, c, hw), mn); }

    for (int flip = 0; flip < 2; ++flip) {
      V y(total), yn(total);
      random_crop_flip(x.data(), y.data(), n, c, h, w, 2, flip, 13, 4);
      random_crop_flip_nhwc(xn.data(), yn.data(), n, c, h, w, 2, flip, 13, 4);
      check("random_crop_flip_nhwc", toNHWC(y, n, c, hw), yn); }

    { V meanStd(2 * c); for (i64 k = 0; k < c; ++k) { meanStd[k] = 0.1f * k; meanStd[c + k] = 0.5f + 0.25f * k; }
      V y(total), yn(total);
      normalize_channels(x.data(), y.data(), meanStd.data(), total, c, hw);
      normalize_channels(xn.data(), yn.data(), meanStd.data(), total, c, 1);
      check("normalize_channels (NHWC, hw = 1)", toNHWC(y, n, c, hw), yn); }

    // Pooling: ties (three levels) and a NaN, as the CPU's first-maximum rule must route them.
    V xt = values(total, 99, 3); xt[total / 2] = __int_as_float(0x7fc00000);
    V xtn = toNHWC(xt, n, c, hw);
    const i64 pools[4][3] = {{2, 2, 0}, {3, 2, 1}, {3, 1, 1}, {1, 1, 0}};
    for (auto& pool : pools) {
        i64 k = pool[0], s = pool[1], pad = pool[2];
        if (h + 2 * pad < k || w + 2 * pad < k) continue;
        i64 oh = (h + 2 * pad - k) / s + 1, ow = (w + 2 * pad - k) / s + 1, outTotal = n * c * oh * ow;
        float inv = 1.0f / (float)(k * k);
        V y(outTotal), yn(outTotal), dy = values(outTotal, 5, 0), dyn = toNHWC(dy, n, c, oh * ow), dx(total), dxn(total);
        maxpool_forward(xt.data(), y.data(), n * c, h, w, oh, ow, k, s, pad);
        maxpool_forward_nhwc(xtn.data(), yn.data(), n, c, h, w, oh, ow, k, s, pad);
        check("maxpool_forward_nhwc", toNHWC(y, n, c, oh * ow), yn);
        maxpool_backward(xt.data(), dy.data(), dx.data(), n * c, h, w, oh, ow, k, s, pad);
        maxpool_backward_nhwc(xtn.data(), dyn.data(), dxn.data(), n, c, h, w, oh, ow, k, s, pad);
        check("maxpool_backward_nhwc", toNHWC(dx, n, c, hw), dxn);
        avgpool_forward(x.data(), y.data(), n * c, h, w, oh, ow, k, s, pad, inv);
        avgpool_forward_nhwc(xn.data(), yn.data(), n, c, h, w, oh, ow, k, s, pad, inv);
        check("avgpool_forward_nhwc", toNHWC(y, n, c, oh * ow), yn);
        avgpool_backward(dy.data(), dx.data(), n * c, h, w, oh, ow, k, s, pad, inv);
        avgpool_backward_nhwc(dyn.data(), dxn.data(), n, c, h, w, oh, ow, k, s, pad, inv);
        check("avgpool_backward_nhwc", toNHWC(dx, n, c, hw), dxn);
    }

    { V y(n * c), yn(n * c), dy = values(n * c, 17, 0), dx(total), dxn(total);
      global_avgpool_forward(x.data(), y.data(), n * c, hw);
      global_avgpool_forward_nhwc(xn.data(), yn.data(), n, c, hw);
      check("global_avgpool_forward_nhwc", y, yn);
      global_avgpool_backward(dy.data(), dx.data(), n * c, hw, 1.0f / (float)hw);
      global_avgpool_backward_nhwc(dy.data(), dxn.data(), n, c, hw, 1.0f / (float)hw);
      check("global_avgpool_backward_nhwc", toNHWC(dx, n, c, hw), dxn); }

    for (i64 stride = 1; stride <= 2; ++stride) {
        i64 cout = c + 3, offset = 2, oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride;
        i64 outTotal = n * cout * oh * ow;
        V y(outTotal), yn(outTotal), dy = values(outTotal, 23, 0), dyn = toNHWC(dy, n, cout, oh * ow), dx(total), dxn(total);
        shortcut_pad_forward(x.data(), y.data(), n, c, h, w, cout, oh, ow, stride, offset);
        shortcut_pad_forward_nhwc(xn.data(), yn.data(), n, c, h, w, cout, oh, ow, stride, offset);
        check("shortcut_pad_forward_nhwc", toNHWC(y, n, cout, oh * ow), yn);
        shortcut_pad_backward(dy.data(), dx.data(), n, c, h, w, cout, oh, ow, stride, offset);
        shortcut_pad_backward_nhwc(dyn.data(), dxn.data(), n, c, h, w, cout, oh, ow, stride, offset);
        check("shortcut_pad_backward_nhwc", toNHWC(dx, n, c, hw), dxn);
    }
}

int main() {
    shape(2, 3, 5, 7);
    shape(1, 4, 6, 6);
    shape(3, 1, 4, 5);    // one channel: both orders coincide
    shape(2, 5, 1, 1);    // one pixel
    shape(2, 16, 8, 8);
    printf("DONE checks=%d failures=%d\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
"""#

    /// Batch norm (training forward, inference, backward in both GradModes) and bias backward on
    /// channels-last (rows, C) data against float64, over shapes and grids the GPU meets: C = 1,
    /// 3, 16, 300 (two channel tiles), M prime or smaller than the chunks, 1 to 64 threads a block.
    static let channelReductionHarness = #"""

// ---- Batch norm and bias backward on channels-last data against a float64 reference ----------
#include <thread>
typedef std::vector<float> BV;
typedef std::vector<double> DV;
static int bnFailures = 0, bnChecks = 0;

// Runs `body` as a grid of `grid` blocks of `block` real threads (blocks one after another), so
// __syncthreads and __shared__ behave as on a GPU.
template <typename F> static void launchHost(unsigned grid, unsigned block, F body) {
    gridDim.x = grid; blockDim.x = block; hostBarrier.count = block;
    for (unsigned b = 0; b < grid; ++b) {
        blockIdx.x = b;
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < block; ++t) threads.emplace_back([=] { threadIdx.x = t; body(); });
        for (auto& th : threads) th.join();
    }
    gridDim.x = 1; blockDim.x = 1; blockIdx.x = 0; hostBarrier.count = 1;
}

static void near(const char* name, const DV& want, const BV& got, double tol, const char* where) {
    bnChecks++;
    for (size_t i = 0; i < want.size(); ++i)
        if (!(fabs((double)got[i] - want[i]) <= tol * (1.0 + fabs(want[i])))) {
            printf("MISMATCH %s (%s) at %zu: got %.9g, float64 %.9g\n", name, where, i, got[i], want[i]);
            bnFailures++; return;
        }
}

// Bit for bit: a fused kernel against the unfused kernels it replaces.
static void same(const char* name, const BV& want, const BV& got, const char* where) {
    bnChecks++;
    for (size_t i = 0; i < want.size(); ++i)
        if (std::memcmp(&want[i], &got[i], 4) != 0) {
            printf("MISMATCH %s (%s) at %zu: fused %.9g, unfused %.9g\n", name, where, i, got[i], want[i]);
            bnFailures++; return;
        }
}

static BV reluOf(BV v) { for (auto& x : v) x = x < 0.0f ? 0.0f : x; return v; }

static BV bnValues(size_t count, unsigned seed, float offset, float scale) {
    BV v(count); srand(seed);
    for (auto& x : v) x = offset + scale * ((float)rand() / (float)RAND_MAX * 2.0f - 1.0f);
    return v;
}

// (rows, c) channels-last data; `chunks` row chunks of blocks of `block` threads.
static void bnShape(i64 rows, i64 c, i64 chunks, unsigned block) {
    char where[128];
    snprintf(where, sizeof where, "rows %lld, C %lld, %lld chunks, %u threads", rows, c, chunks, block);
    i64 total = rows * c;
    BV x = bnValues(total, (unsigned)(rows * 7 + c), 3.0f, 2.0f), dy = bnValues(total, (unsigned)(rows + c * 13), 0.5f, 1.0f);
    BV gamma = bnValues(c, 3, 1.0f, 0.5f), beta = bnValues(c, 4, 0.0f, 0.5f);
    BV rmean = bnValues(c, 5, 0.2f, 0.1f), rvar = bnValues(c, 6, 1.0f, 0.5f);
    const float momentum = 0.1f, eps = 1e-5f;
    i64 width = std::min<i64>(c, block), lanes = block / width, tiles = (c + width - 1) / width;
    unsigned sumBlocks = (unsigned)(tiles * chunks), perChannel = (unsigned)std::min<i64>(c, 2);

    // float64 reference
    DV mean(c, 0), var(c, 0), istd(c), y(total), rm(c), rv(c), db(c, 0), dg(c, 0), dx(total);
    for (i64 r = 0; r < rows; ++r) for (i64 k = 0; k < c; ++k) mean[k] += x[r * c + k];
    for (i64 k = 0; k < c; ++k) mean[k] /= rows;
    for (i64 r = 0; r < rows; ++r) for (i64 k = 0; k < c; ++k) { double d = x[r * c + k] - mean[k]; var[k] += d * d; }
    for (i64 k = 0; k < c; ++k) {
        istd[k] = 1.0 / sqrt(var[k] / rows + eps);
        rm[k] = (1 - (double)momentum) * rmean[k] + (double)momentum * mean[k];
        rv[k] = (1 - (double)momentum) * rvar[k] + (double)momentum * var[k] / (rows - 1);
        var[k] /= rows;
    }
    for (i64 e = 0; e < total; ++e) { i64 k = e % c; y[e] = (x[e] - mean[k]) * istd[k] * gamma[k] + beta[k]; }
    for (i64 e = 0; e < total; ++e) { i64 k = e % c; db[k] += dy[e]; dg[k] += dy[e] * (x[e] - mean[k]) * istd[k]; }
    for (i64 e = 0; e < total; ++e) {
        i64 k = e % c; double xh = (x[e] - mean[k]) * istd[k];
        dx[e] = gamma[k] * istd[k] * (dy[e] - db[k] / rows - xh * dg[k] / rows);
    }

    // forward training, as the launcher queues it
    DV partial(chunks * c * 2 + 3 * c, -1.0);
    BV sm(c), si(c), rmg = rmean, rvg = rvar, yg(total);
    launchHost(sumBlocks, block, [&] { channel_sums_nhwc(x.data(), x.data(), nullptr, rows, c, partial.data()); });
    launchHost(perChannel, block, [&] { batch_norm_statistics(partial.data(), chunks, rows, c, sm.data(), si.data(), rmg.data(), rvg.data(), momentum, eps); });
    launchHost(5, 1, [&] { batch_norm_normalize_nhwc(x.data(), yg.data(), gamma.data(), beta.data(), sm.data(), si.data(), total, c); });
    near("batch_norm saveMean", mean, sm, 1e-6, where);
    near("batch_norm saveInvStd", istd, si, 1e-6, where);
    near("batch_norm runningMean", rm, rmg, 1e-6, where);
    near("batch_norm runningVar (unbiased)", rv, rvg, 1e-6, where);
    near("batch_norm_normalize_nhwc", y, yg, 1e-5, where);

    // inference with the running statistics
    { DV yi(total); BV yig(total);
      for (i64 e = 0; e < total; ++e) { i64 k = e % c; yi[e] = (x[e] - rmean[k]) / sqrt((double)rvar[k] + eps) * gamma[k] + beta[k]; }
      launchHost(3, 1, [&] { batch_norm_inference_nhwc(x.data(), yig.data(), gamma.data(), beta.data(), rmean.data(), rvar.data(), total, c, eps); });
      near("batch_norm_inference_nhwc", yi, yig, 1e-5, where);
      BV yif(total);
      launchHost(3, 1, [&] { batch_norm_inference_relu_nhwc(x.data(), yif.data(), gamma.data(), beta.data(), rmean.data(), rvar.data(), total, c, eps); });
      same("batch_norm_inference_relu_nhwc", reluOf(yig), yif, where);
      // + a residual, as add_f32 adds it, then ReLU.
      BV res = bnValues(total, (unsigned)(rows * 3 + c), 0.0f, 1.0f), sumi(total), yia(total);
      for (i64 e = 0; e < total; ++e) sumi[e] = yig[e] + res[e];
      launchHost(3, 1, [&] { batch_norm_inference_add_relu_nhwc(x.data(), res.data(), yia.data(), gamma.data(), beta.data(), rmean.data(), rvar.data(), total, c, eps); });
      same("batch_norm_inference_add_relu_nhwc", reluOf(sumi), yia, where);
      BV sumt(total), yta(total);
      for (i64 e = 0; e < total; ++e) sumt[e] = yg[e] + res[e];
      launchHost(5, 1, [&] { batch_norm_normalize_add_relu_nhwc(x.data(), res.data(), yta.data(), gamma.data(), beta.data(), sm.data(), si.data(), total, c); });
      same("batch_norm_normalize_add_relu_nhwc", reluOf(sumt), yta, where); }

    // Fused batch norm + ReLU: the forward is relu(the unfused output); the backward from the
    // fused output's mask equals relu_backward's select into dy, then the unfused kernels. beta is
    // shifted so that about half of the normalised values are cut.
    { BV betaCut = beta; for (auto& b : betaCut) b -= 0.1f;
      BV yu(total), yf(total);
      launchHost(5, 1, [&] { batch_norm_normalize_nhwc(x.data(), yu.data(), gamma.data(), betaCut.data(), sm.data(), si.data(), total, c); });
      launchHost(5, 1, [&] { batch_norm_normalize_relu_nhwc(x.data(), yf.data(), gamma.data(), betaCut.data(), sm.data(), si.data(), total, c); });
      BV yr = reluOf(yu);
      same("batch_norm_normalize_relu_nhwc", yr, yf, where);
      i64 cut = 0; for (float v : yf) cut += v == 0.0f;
      if (cut == 0 || cut == total) { printf("MISMATCH fused ReLU cuts %lld of %lld values (%s)\n", cut, total, where); bnFailures++; }
      for (int accumulate = 0; accumulate < 2; ++accumulate) {
          BV dym(total); for (i64 e = 0; e < total; ++e) dym[e] = yf[e] > 0.0f ? dy[e] : 0.0f;
          BV ggu(c, 0.25f), gbu(c, -0.5f), dxu(total, 99.0f), ggf = ggu, gbf = gbu, dxf = dxu;
          double* coef = partial.data() + chunks * c * 2;
          launchHost(sumBlocks, block, [&] { channel_sums_nhwc(dym.data(), x.data(), sm.data(), rows, c, partial.data()); });
          launchHost(perChannel, block, [&] { batch_norm_backward_statistics(partial.data(), chunks, rows, c, gamma.data(), si.data(), ggu.data(), gbu.data(), accumulate, coef); });
          launchHost(4, 1, [&] { batch_norm_backward_data_nhwc(x.data(), dym.data(), dxu.data(), sm.data(), coef, total, c); });
          launchHost(sumBlocks, block, [&] { channel_sums_relu_nhwc(dy.data(), yf.data(), x.data(), sm.data(), rows, c, partial.data()); });
          launchHost(perChannel, block, [&] { batch_norm_backward_statistics(partial.data(), chunks, rows, c, gamma.data(), si.data(), ggf.data(), gbf.data(), accumulate, coef); });
          launchHost(4, 1, [&] { batch_norm_backward_data_relu_nhwc(x.data(), yf.data(), dy.data(), dxf.data(), sm.data(), coef, total, c); });
          same("fused batch_norm + relu dgamma", ggu, ggf, where);
          same("fused batch_norm + relu dbeta", gbu, gbf, where);
          same("batch_norm_backward_data_relu_nhwc", dxu, dxf, where);
      } }

    // backward, overwrite then accumulate (dx is always overwritten)
    for (int accumulate = 0; accumulate < 2; ++accumulate) {
        BV gg(c, 0.25f), gb(c, -0.5f), dxg(total, 99.0f);
        DV wantG(c), wantB(c);
        for (i64 k = 0; k < c; ++k) { wantG[k] = dg[k] + (accumulate ? 0.25 : 0.0); wantB[k] = db[k] + (accumulate ? -0.5 : 0.0); }
        launchHost(sumBlocks, block, [&] { channel_sums_nhwc(dy.data(), x.data(), sm.data(), rows, c, partial.data()); });
        double* coef = partial.data() + chunks * c * 2;
        launchHost(perChannel, block, [&] { batch_norm_backward_statistics(partial.data(), chunks, rows, c, gamma.data(), si.data(), gg.data(), gb.data(), accumulate, coef); });
        launchHost(4, 1, [&] { batch_norm_backward_data_nhwc(x.data(), dy.data(), dxg.data(), sm.data(), coef, total, c); });
        near(accumulate ? "batch_norm dgamma (accumulate)" : "batch_norm dgamma", wantG, gg, 2e-5, where);
        near(accumulate ? "batch_norm dbeta (accumulate)" : "batch_norm dbeta", wantB, gb, 2e-5, where);
        near("batch_norm_backward_data_nhwc", dx, dxg, 2e-5, where);

        BV dbg(c, 1.5f); DV wantDb(c);
        for (i64 k = 0; k < c; ++k) wantDb[k] = db[k] + (accumulate ? 1.5 : 0.0);
        launchHost(sumBlocks, block, [&] { channel_sums_nhwc(dy.data(), nullptr, nullptr, rows, c, partial.data()); });
        launchHost(perChannel, block, [&] { bias_backward_statistics(partial.data(), chunks, c, dbg.data(), accumulate); });
        near(accumulate ? "bias backward (accumulate)" : "bias backward", wantDb, dbg, 2e-5, where);
    }
}

int main() {
    // Threads per block: 1 (each block one channel column), 32 and 64, as real threads. (The GPU
    // runs 256; the code is the same for any block, and 256 real threads per block on a loaded
    // 2-core host take tens of seconds.)
    const unsigned blocks[2] = {1, 32};
    for (unsigned block : blocks) {
        bnShape(70, 3, 3, block);      // (2, 3, 5, 7): C = 3, M not a multiple of anything
        bnShape(1000, 1, 7, block);    // C = 1
        bnShape(9, 5, 1, block);       // rank 2 (N = 9, C = 5), one chunk
        bnShape(9, 5, 4, block);       // more chunks than rows per chunk
        bnShape(1031, 16, 5, block);   // C = 16, the small-channel case, M prime
        bnShape(37, 300, 2, block);    // C > the block: two channel tiles, the last partial
    }
    bnShape(1031, 16, 3, 64);          // 4 lanes
    bnShape(70, 3, 3, 64);             // 21 lanes: the tree over a lane count that is no power of two
    printf("DONE checks=%d failures=%d\n", bnChecks, bnFailures);
    return bnFailures == 0 ? 0 : 1;
}
"""#

    /// A C++ compiler on PATH (the Swift toolchain's clang++, or g++).
    private func compiler() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for name in ["clang++", "g++"] {
            for dir in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
                return "\(dir)/\(name)"
            }
        }
        return nil
    }

    private func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Compiles the kernel source with `harness` as host C++ and runs it; nil (after a failed
    /// assertion) when it does not compile.
    private func compileAndRun(_ harness: String) throws -> (status: Int32, output: String)? {
        guard let cxx = compiler() else { throw XCTSkip("no C++ compiler (clang++ or g++) on PATH") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("strata-kernel-host-\(getpid())-\(harness.count)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = dir.appendingPathComponent("kernels.cpp"), binary = dir.appendingPathComponent("kernels")
        try (Self.hostPrelude + CUDAKernelSource.text + harness).write(to: source, atomically: true, encoding: .utf8)
        // No contraction, as NVRTC's --fmad=false: both variants round the same way.
        let compiled = try run(cxx, ["-std=c++17", "-O1", "-ffp-contract=off", "-w", "-pthread", "-o", binary.path, source.path])
        XCTAssertEqual(compiled.status, 0, "the kernel source does not compile as host C++:\n\(compiled.output.prefix(4000))")
        guard compiled.status == 0 else { return nil }
        return try run(binary.path, [])
    }

    /// The count of checks a harness reports on its `DONE checks=` line.
    private func checks(_ output: String) -> Int? {
        output.split(separator: "\n").first { $0.hasPrefix("DONE checks=") }
            .flatMap { Int($0.dropFirst("DONE checks=".count).prefix { $0.isNumber }) }
    }

    /// The multi-tensor optimizer kernels (CUDAMultiTensor.swift) against the per-tensor ones,
    /// bit for bit, reading the table `MultiTensorTable` builds: its pointer words are buffer
    /// numbers here, which the harness turns into host addresses. Three emulated blocks and a
    /// chunk size that splits tensors; an empty tensor and entries without momentum included.
    func testMultiTensorOptimizerKernelsMatchThePerTensorOnesOnTheHost() throws {
        let counts = [1000, 0, 7, 300, 1, 129]
        let sgd = MultiTensorTable(counts.enumerated().map { t, n in
            .init(pointers: [UInt64(3 * t + 1), UInt64(3 * t + 2), t % 2 == 0 ? UInt64(3 * t + 3) : 0],
                  scalars: [0.05 * Float(t + 1)], count: n)
        }, pointersPerTensor: 3, scalarsPerTensor: 1, chunkSize: 64)
        let adam = MultiTensorTable(counts.enumerated().map { t, n in
            .init(pointers: (1...4).map { UInt64(4 * t + $0) }, scalars: [0.001 * Float(t + 1), 1 - 0.0001 * Float(t)], count: n)
        }, pointersPerTensor: 4, scalarsPerTensor: 2, chunkSize: 64)
        func array(_ words: [UInt64]) -> String { words.map { "\($0)ull" }.joined(separator: ", ") }
        let harness = """

        #include <cstdint>
        typedef std::vector<float> V;
        static const i64 T = \(counts.count);
        static const i64 counts[] = {\(counts.map(String.init).joined(separator: ", "))};
        static const unsigned long long sgdTable[] = {\(array(sgd.words))};
        static const i64 sgdChunks = \(sgd.chunks.count);
        static const unsigned long long adamTable[] = {\(array(adam.words))};
        static const i64 adamChunks = \(adam.chunks.count);
        static int failures = 0, checks = 0;

        static V randoms(size_t n, unsigned seed) {
            V v(n); srand(seed);
            for (auto& x : v) x = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
            return v;
        }
        static float scalarOf(const unsigned long long* table, i64 index) { return __int_as_float((int)table[index]); }

        // Buffers 1...K*T (K per tensor), tensor t's count each; the table's pointer words patched to them.
        static std::vector<unsigned long long> patched(const unsigned long long* table, size_t words, i64 k, std::vector<V>& buffers) {
            std::vector<unsigned long long> out(table, table + words);
            for (i64 i = 0; i < k * T; ++i) if (out[i]) out[i] = (unsigned long long)(uintptr_t)buffers[out[i]].data();
            return out;
        }
        static std::vector<V> buffers(i64 k, unsigned seed) {
            std::vector<V> b(k * T + 1);
            for (i64 t = 0; t < T; ++t) for (i64 j = 0; j < k; ++j) b[k * t + j + 1] = randoms(counts[t], seed + 7 * (unsigned)(k * t + j));
            // Second moments are not negative.
            if (k == 4) for (i64 t = 0; t < T; ++t) for (auto& x : b[4 * t + 4]) x = x * x;
            return b;
        }
        static void compare(const char* name, const std::vector<V>& want, const std::vector<V>& got) {
            for (size_t i = 0; i < want.size(); ++i) {
                checks++;
                if (want[i].size() != got[i].size() || (want[i].size() && std::memcmp(want[i].data(), got[i].data(), 4 * want[i].size()))) {
                    printf("MISMATCH %s buffer %zu\\n", name, i); failures++;
                }
            }
        }

        int main() {
            for (int nesterov = 0; nesterov < 2; ++nesterov) {
                std::vector<V> multi = buffers(3, 11), single = multi;
                auto table = patched(sgdTable, sizeof sgdTable / 8, 3, multi);
                gridDim.x = 3; blockDim.x = 1;
                for (unsigned b = 0; b < 3; ++b) { blockIdx.x = b; sgd_multi((const float*)table.data(), T, sgdChunks, 0.9f, 5e-4f, nesterov); }
                gridDim.x = 1; blockIdx.x = 0;
                for (i64 t = 0; t < T; ++t) {
                    if (!counts[t]) continue;
                    float lr = scalarOf(sgdTable, 3 * T + t);
                    if (sgdTable[3 * t + 2]) sgd_momentum(single[3 * t + 1].data(), single[3 * t + 2].data(), single[3 * t + 3].data(), counts[t], lr, 0.9f, 5e-4f, nesterov);
                    else sgd_plain(single[3 * t + 1].data(), single[3 * t + 2].data(), counts[t], lr, 5e-4f);
                }
                compare(nesterov ? "sgd_multi nesterov" : "sgd_multi", single, multi);
            }
            for (int decoupled = 0; decoupled < 2; ++decoupled) {
                std::vector<V> multi = buffers(4, 23), single = multi;
                float l2 = decoupled ? 0.0f : 0.01f, invSqrtBc2 = 1.2f;
                auto table = patched(adamTable, sizeof adamTable / 8, 4, multi);
                gridDim.x = 3; blockDim.x = 1;
                for (unsigned b = 0; b < 3; ++b) { blockIdx.x = b; adam_multi((const float*)table.data(), T, adamChunks, 0.9f, 0.999f, 0.1f, 0.001f, 1e-8f, invSqrtBc2, l2); }
                gridDim.x = 1; blockIdx.x = 0;
                for (i64 t = 0; t < T; ++t) {
                    if (!counts[t]) continue;
                    adam_update(single[4 * t + 1].data(), single[4 * t + 2].data(), single[4 * t + 3].data(), single[4 * t + 4].data(), counts[t],
                                0.9f, 0.999f, 0.1f, 0.001f, 1e-8f, scalarOf(adamTable, 4 * T + 2 * t), invSqrtBc2, l2,
                                scalarOf(adamTable, 4 * T + 2 * t + 1));
                }
                compare(decoupled ? "adam_multi decoupled" : "adam_multi", single, multi);
            }
            printf("DONE checks=%d failures=%d\\n", checks, failures);
            return failures ? 1 : 0;
        }
        """
        guard let result = try compileAndRun(harness) else { return }
        XCTAssertFalse(result.output.contains("MISMATCH"), String(result.output.prefix(4000)))
        XCTAssertEqual(result.status, 0, String(result.output.prefix(4000)))
        XCTAssertEqual(checks(result.output), 2 * (3 * counts.count + 1) + 2 * (4 * counts.count + 1), result.output)
    }

    func testChannelsLastKernelsMatchTheirNCHWTwinsOnTheHost() throws {
        guard let result = try compileAndRun(Self.harness) else { return }
        XCTAssertFalse(result.output.contains("MISMATCH"), result.output)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("failures=0"), result.output)
        // Not vacuous: 5 shapes x (permutes, fills, dropout, crops, normalize, 4 pools, global pool, shortcut).
        XCTAssertGreaterThanOrEqual(checks(result.output) ?? 0, 150, result.output)
    }

    /// The launcher's split of (rows, C): C = 16 with M = 131072 (ResNet-20's first stage at batch
    /// 128) fills an H200's 132 multiprocessors; tiny inputs get one chunk; wide C several tiles.
    func testChannelSumsGridFillsTheDevice() {
        let small = ChannelSumsGrid(rows: 131_072, channels: 16, multiprocessors: 132)
        XCTAssertEqual(small.tiles, 1)
        XCTAssertGreaterThanOrEqual(small.blocks, 2 * 132)
        XCTAssertEqual(ChannelSumsGrid(rows: 2, channels: 1, multiprocessors: 132), ChannelSumsGrid(rows: 2, channels: 1, multiprocessors: 1))
        XCTAssertEqual(ChannelSumsGrid(rows: 2, channels: 1, multiprocessors: 132).blocks, 1)
        let wide = ChannelSumsGrid(rows: 512, channels: 512, multiprocessors: 132)
        XCTAssertEqual(wide.tiles, 2)
        XCTAssertEqual(wide.chunks, 32, "16 rows a thread at least")
    }

    func testChannelsLastBatchNormAndBiasBackwardMatchFloat64OnTheHost() throws {
        guard let result = try compileAndRun(Self.channelReductionHarness) else { return }
        XCTAssertFalse(result.output.contains("MISMATCH"), String(result.output.prefix(4000)))
        XCTAssertEqual(result.status, 0, String(result.output.prefix(4000)))
        // 14 shapes x 14 checks (statistics, running stats, y, inference, dgamma, dbeta, dx, db; twice),
        // and 10 of the fused batch norm + ReLU (+ residual) against the unfused kernels.
        XCTAssertGreaterThanOrEqual(checks(result.output) ?? 0, 14 * 24, result.output)
    }

    /// The reduced-precision cast kernels (CUDAPrecision.swift) against their Swift mirror
    /// `ReducedRounding`, bit for bit: `round_to_bf16` and `round_to_f16` on edge cases (ties,
    /// subnormals, overflow, infinities, NaN) and random bit patterns, `widen_bf16` and `widen_f16`
    /// on all 65536 patterns, and the accumulate flag.
    func testReducedPrecisionCastKernelsMatchTheSwiftMirrorOnTheHost() throws {
        let inputs = ReducedRoundingTests.edgeCases.map(\.bitPattern) + ReducedRoundingTests.randomPatterns(4000, seed: 7)
        let harness = """

        static const unsigned inputs[] = {\(inputs.map { "0x\(String($0, radix: 16))u" }.joined(separator: ","))};
        int main() {
            const i64 n = sizeof(inputs) / sizeof(inputs[0]);
            std::vector<float> x(n); std::vector<u16> b(n), h(n);
            for (i64 i = 0; i < n; ++i) x[i] = __uint_as_float(inputs[i]);
            round_to_bf16(x.data(), b.data(), n);
            round_to_f16(x.data(), h.data(), n);
            for (i64 i = 0; i < n; ++i) printf("R %x %x\\n", b[i], h[i]);
            std::vector<u16> all(65536); for (int i = 0; i < 65536; ++i) all[i] = (u16)i;
            std::vector<float> wb(65536), wh(65536);
            widen_bf16(all.data(), wb.data(), 65536, 0);
            widen_f16(all.data(), wh.data(), 65536, 0);
            for (int i = 0; i < 65536; ++i) printf("W %x %x\\n", __float_as_uint(wb[i]), __float_as_uint(wh[i]));
            std::vector<float> acc = {1.0f, -2.5f, 1e30f};
            std::vector<u16> add = {0x3f80, 0x4000, 0x7f80};   // bf16 1, 2, infinity
            widen_bf16(add.data(), acc.data(), 3, 1);
            printf("A %x %x %x\\n", __float_as_uint(acc[0]), __float_as_uint(acc[1]), __float_as_uint(acc[2]));
            printf("DONE checks=%lld failures=0\\n", (long long)(n + 65536 + 1));
            return 0;
        }
        """
        guard let result = try compileAndRun(harness) else { return }
        XCTAssertEqual(result.status, 0, String(result.output.prefix(4000)))
        let lines = result.output.split(separator: "\n")
        let rounded = lines.filter { $0.hasPrefix("R ") }, widened = lines.filter { $0.hasPrefix("W ") }
        XCTAssertEqual(rounded.count, inputs.count)
        XCTAssertEqual(widened.count, 65536)
        var mismatches: [String] = []
        for (bits, line) in zip(inputs, rounded) {
            let words = line.split(separator: " ").dropFirst().map { UInt16($0, radix: 16) }
            let f = Float(bitPattern: bits)
            if words != [ReducedRounding.bf16Bits(f), ReducedRounding.fp16Bits(f)] {
                mismatches.append("round 0x\(String(bits, radix: 16)) (\(f)): kernel \(line), Swift bf16 \(String(ReducedRounding.bf16Bits(f), radix: 16)) fp16 \(String(ReducedRounding.fp16Bits(f), radix: 16))")
            }
        }
        for (h, line) in widened.enumerated() {
            let words = line.split(separator: " ").dropFirst().map { UInt32($0, radix: 16) }
            let want = [ReducedRounding.bf16Value(UInt16(h)).bitPattern, ReducedRounding.fp16Value(UInt16(h)).bitPattern]
            if words != want { mismatches.append("widen 0x\(String(h, radix: 16)): kernel \(line), Swift \(want.map { String($0, radix: 16) })") }
        }
        XCTAssertEqual(mismatches.count, 0, mismatches.prefix(20).joined(separator: "\n"))
        let accumulated = lines.first { $0.hasPrefix("A ") }.map { $0.split(separator: " ").dropFirst().compactMap { UInt32($0, radix: 16) } }
        XCTAssertEqual(accumulated, [Float(2).bitPattern, Float(-0.5).bitPattern, Float.infinity.bitPattern])
    }
}
#endif
