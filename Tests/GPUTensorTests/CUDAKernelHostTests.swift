#if CUDA
import Foundation
import XCTest
@testable import GPUTensor

/// The NVRTC kernels run on the HOST, without a GPU: `CUDAKernelSource.text` is plain C++ once
/// `__global__`, `__shared__` and the thread indices are defined, and a one-thread "launch" runs
/// each grid-stride loop over every element. This checks each channels-last (`_nhwc`) kernel
/// against its NCHW twin, bit for bit, on the same logical data (the NCHW kernels are checked
/// against the CPU backend on a GPU by `selftest --device cuda`), and the layout permutes against
/// an independent host permute. Skipped when no C++ compiler is installed.
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
struct HostDim { unsigned x; };
static HostDim blockIdx = {0}, blockDim = {1}, threadIdx = {0}, gridDim = {1};
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __syncthreads() ((void)0)
static inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
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
        strided_channel_copy_forward(x.data(), y.data(), n, c, h, w, cout, oh, ow, stride, offset);
        strided_channel_copy_forward_nhwc(xn.data(), yn.data(), n, c, h, w, cout, oh, ow, stride, offset);
        check("strided_channel_copy_forward_nhwc", toNHWC(y, n, cout, oh * ow), yn);
        strided_channel_copy_backward(dy.data(), dx.data(), n, c, h, w, cout, oh, ow, stride, offset);
        strided_channel_copy_backward_nhwc(dyn.data(), dxn.data(), n, c, h, w, cout, oh, ow, stride, offset);
        check("strided_channel_copy_backward_nhwc", toNHWC(dx, n, c, hw), dxn);
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

    func testChannelsLastKernelsMatchTheirNCHWTwinsOnTheHost() throws {
        guard let cxx = compiler() else { throw XCTSkip("no C++ compiler (clang++ or g++) on PATH") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("strata-kernel-host-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = dir.appendingPathComponent("kernels.cpp"), binary = dir.appendingPathComponent("kernels")
        try (Self.hostPrelude + CUDAKernelSource.text + Self.harness).write(to: source, atomically: true, encoding: .utf8)
        // No contraction, as NVRTC's --fmad=false: both variants round the same way.
        let compiled = try run(cxx, ["-std=c++17", "-O1", "-ffp-contract=off", "-w", "-o", binary.path, source.path])
        XCTAssertEqual(compiled.status, 0, "the kernel source does not compile as host C++:\n\(compiled.output.prefix(4000))")
        guard compiled.status == 0 else { return }
        let result = try run(binary.path, [])
        XCTAssertFalse(result.output.contains("MISMATCH"), result.output)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("failures=0"), result.output)
        // Not vacuous: 5 shapes x (permutes, fills, dropout, crops, normalize, 4 pools, global pool, shortcut).
        let checks = result.output.split(separator: "\n").first { $0.hasPrefix("DONE checks=") }
            .flatMap { Int($0.dropFirst("DONE checks=".count).prefix { $0.isNumber }) }
        XCTAssertGreaterThanOrEqual(checks ?? 0, 150, result.output)
    }
}
#endif
