#if CUDA
import XCTest
import CCuda
@testable import GPUTensor

/// A CUDA runtime without a driver: device memory is host memory with a limit, `cudaMalloc`
/// beyond it fails with out-of-memory and, like the real runtime, leaves that as the last error
/// until `cudaGetLastError` reads it. The device can be made to report a fault on its next wait.
final class FakeCUDARuntime {
    let limit: Int
    private(set) var used = 0
    private var sizes: [UnsafeMutableRawPointer: Int] = [:]
    private(set) var lastError = cudaSuccess
    /// What the next waits return (`cudaErrorIllegalAddress` = 700 for a faulted kernel).
    var deviceSyncStatus = cudaSuccess
    var streamSyncStatus = cudaSuccess
    private(set) var mallocFailures = 0, frees = 0, deviceSyncs = 0

    init(limit: Int) { self.limit = limit }

    var free: Int { limit - used }

    var runtime: CUDARuntime {
        CUDARuntime(
            malloc: { [self] bytes in
                guard used + bytes <= limit else {
                    mallocFailures += 1
                    lastError = cudaErrorMemoryAllocation
                    return (cudaErrorMemoryAllocation, nil)
                }
                let p = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 256)
                sizes[p] = bytes
                used += bytes
                return (cudaSuccess, p)
            },
            free: { [self] p in
                used -= sizes.removeValue(forKey: p) ?? 0
                p.deallocate()
                frees += 1
                return cudaSuccess
            },
            deviceSynchronize: { [self] in
                deviceSyncs += 1
                if deviceSyncStatus != cudaSuccess { lastError = deviceSyncStatus }
                return deviceSyncStatus
            },
            streamSynchronize: { [self] _ in
                if streamSyncStatus != cudaSuccess { lastError = streamSyncStatus }
                return streamSyncStatus
            },
            getLastError: { [self] in
                defer { lastError = cudaSuccess }
                return lastError
            })
    }
}

/// The allocator, workspace, synchronisation and convolution-algorithm logic of the CUDA
/// backend, run against `FakeCUDARuntime` and fake cuDNN searches (no GPU needed).
final class CUDAMemoryTests: XCTestCase {
    static let mib = 1 << 20

    override func tearDown() {
        CUDACalls.injectFailure = nil
        super.tearDown()
    }

    /// An allocator whose cache holds `cached` bytes in one block, on a device of `limit` bytes.
    private func allocator(limit: Int, cached: Int) throws -> (CUDAAllocator, FakeCUDARuntime) {
        let fake = FakeCUDARuntime(limit: limit)
        let allocator = CUDAAllocator(runtime: fake.runtime)
        let (p, size) = try allocator.allocate(bytes: cached)
        allocator.recycle(p, size: size)
        XCTAssertEqual(allocator.bytesCached, cached)
        return (allocator, fake)
    }

    // MARK: 2. A recovered out-of-memory is not thrown later

    /// While a CUDA graph is captured, freed blocks are held for the graph (its replays use
    /// them): no other tensor gets them until the graph gives them back.
    func testBlocksFreedDuringAGraphCaptureAreHeldUntilTheGraphGoes() throws {
        let fake = FakeCUDARuntime(limit: 64 * Self.mib)
        let allocator = CUDAAllocator(runtime: fake.runtime)
        let (before, size) = try allocator.allocate(bytes: Self.mib)
        allocator.beginHolding()
        let (during, _) = try allocator.allocate(bytes: Self.mib)
        allocator.recycle(during, size: size)
        allocator.recycle(before, size: size)
        XCTAssertEqual(allocator.bytesCached, 0, "held, not cached")
        let (next, _) = try allocator.allocate(bytes: Self.mib)
        XCTAssertNotEqual(next, during)
        XCTAssertNotEqual(next, before)
        let held = allocator.endHolding()
        XCTAssertEqual(held.map(\.block), [during, before])
        allocator.recycle(next, size: size)
        XCTAssertEqual(allocator.bytesCached, size, "after the capture, freed blocks are cached again")
        allocator.recycle(held: held)
        XCTAssertEqual(allocator.bytesCached, 3 * size)
        XCTAssertEqual(allocator.bytesInUse, 0)
    }

    func testRecoveredOutOfMemoryIsNotThrownByTheNextSynchronize() throws {
        let (allocator, fake) = try allocator(limit: 8 * Self.mib, cached: 6 * Self.mib)
        let (block, size) = try allocator.allocate(bytes: 4 * Self.mib)   // fails once, cache released, retried
        XCTAssertEqual(fake.mallocFailures, 1)
        XCTAssertEqual(allocator.bytesCached, 0)
        XCTAssertEqual(fake.lastError, cudaSuccess, "the handled failure must not stay the runtime's last error")
        XCTAssertNoThrow(try allocator.runtime.synchronize(nil), "nothing failed: synchronize must not throw")
        allocator.recycle(block, size: size)
    }

    /// An error already thrown (an allocation that failed even after the retry) is not thrown again.
    func testAFailureIsThrownOnce() throws {
        let (allocator, fake) = try allocator(limit: 8 * Self.mib, cached: 2 * Self.mib)
        let live = try allocator.allocate(bytes: 3 * Self.mib)   // a new block: the cached one is too small
        defer { allocator.recycle(live.0, size: live.1) }
        XCTAssertThrowsError(try allocator.allocate(bytes: 6 * Self.mib)) { error in
            XCTAssertEqual((error as? CUDAError)?.status, .cudaErrorMemoryAllocation, "\(error)")
        }
        XCTAssertEqual(fake.mallocFailures, 2)
        XCTAssertNoThrow(try allocator.runtime.synchronize(nil))
    }

    // MARK: 3. The workspace and cudnnFind get the cache's memory

    func testWorkspaceGetsTheCachedMemoryUnderPressure() throws {
        let (allocator, fake) = try allocator(limit: 8 * Self.mib, cached: 6 * Self.mib)
        let workspace = DeviceWorkspace(allocator: allocator)
        let p = try workspace.reserve(5 * Self.mib)
        XCTAssertNotNil(p)
        XCTAssertEqual(workspace.capacity, 5 * Self.mib)
        XCTAssertEqual(allocator.bytesCached, 0)
        XCTAssertEqual(fake.lastError, cudaSuccess)
        // Growing frees the old block after a checked wait, then allocates the larger one.
        _ = try workspace.reserve(7 * Self.mib)
        XCTAssertEqual(fake.used, 7 * Self.mib)
    }

    /// A fake cudnnFind: the fast algorithm needs a 5 MiB trial workspace and reports
    /// CUDNN_STATUS_ALLOC_FAILED when the device has less free memory than that.
    private func search(_ fake: FakeCUDARuntime, counting counts: UnsafeMutablePointer<[Int]>)
        -> (ConvolutionDirection) throws -> [ConvolutionAlgorithm] {
        { direction in
            counts.pointee[direction.rawValue] += 1
            let fastFits = fake.free >= 5 * Self.mib
            return [
                ConvolutionAlgorithm(algorithm: 7, status: fastFits ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_ALLOC_FAILED,
                                     mathType: CUDNN_FMA_MATH, memory: 5 * Self.mib),
                ConvolutionAlgorithm(algorithm: 0, status: CUDNN_STATUS_SUCCESS, mathType: CUDNN_FMA_MATH, memory: 0),
            ]
        }
    }

    func testFindRunsWithTheCacheGivenBack() throws {
        let (allocator, fake) = try allocator(limit: 8 * Self.mib, cached: 6 * Self.mib)
        var counts = [0, 0, 0]
        let algorithms = ConvolutionAlgorithms(strictFP32: false, allocator: allocator, search: search(fake, counting: &counts))
        let (choice, isNew) = try algorithms.choice(.forward, what: "test")
        XCTAssertTrue(isNew)
        XCTAssertEqual(choice.algorithm, 7, "with the cache full the fast algorithm failed its trial and the slow one was kept")
    }

    // MARK: 4. Strict FP32 takes FMA math only

    func testStrictFP32TakesOnlyFMAMath() throws {
        let results = [
            ConvolutionAlgorithm(algorithm: 1, status: CUDNN_STATUS_SUCCESS, mathType: CUDNN_DEFAULT_MATH, memory: 0),
            ConvolutionAlgorithm(algorithm: 2, status: CUDNN_STATUS_SUCCESS, mathType: CUDNN_TENSOR_OP_MATH, memory: 0),
            ConvolutionAlgorithm(algorithm: 3, status: CUDNN_STATUS_SUCCESS, mathType: CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, memory: 0),
            ConvolutionAlgorithm(algorithm: 4, status: CUDNN_STATUS_SUCCESS, mathType: CUDNN_FMA_MATH, memory: 0),
        ]
        let allocator = CUDAAllocator(runtime: FakeCUDARuntime(limit: Self.mib).runtime)
        let strict = ConvolutionAlgorithms(strictFP32: true, allocator: allocator) { _ in results }
        XCTAssertEqual(try strict.choice(.forward, what: "test").0.algorithm, 4, "DEFAULT_MATH allows TF32 on sm_80+")
        let tf32 = ConvolutionAlgorithms(strictFP32: false, allocator: allocator) { _ in results }
        XCTAssertEqual(try tf32.choice(.forward, what: "test").0.algorithm, 1)

        let none = ConvolutionAlgorithms(strictFP32: true, allocator: allocator) { _ in Array(results.prefix(3)) }
        XCTAssertThrowsError(try none.choice(.backwardFilter, what: "3->4 3x3")) { error in
            XCTAssertTrue("\(error)".contains("backward-filter"), "\(error)")
            XCTAssertTrue("\(error)".contains("FMA math only"), "\(error)")
        }
    }

    // MARK: 6. A device fault before frees is thrown, and STRATA_CUDA_SYNC names the call

    func testDeviceFaultBeforeFreeingTheCacheIsThrown() throws {
        let (allocator, fake) = try allocator(limit: 8 * Self.mib, cached: 6 * Self.mib)
        fake.deviceSyncStatus = cudaErrorIllegalAddress
        XCTAssertThrowsError(try allocator.allocate(bytes: 4 * Self.mib)) { error in
            let e = error as? CUDAError
            XCTAssertEqual(e?.status.rawValue, Int32(cudaErrorIllegalAddress.rawValue), "\(error)")
            XCTAssertTrue(e?.call.hasPrefix("cudaDeviceSynchronize before releasing") ?? false, "\(error)")
        }
        XCTAssertEqual(fake.frees, 0, "blocks that queued work may still use are not freed after a failed wait")
        XCTAssertThrowsError(try allocator.releaseCache())
    }

    func testWorkspaceGrowthChecksTheWait() throws {
        let fake = FakeCUDARuntime(limit: 8 * Self.mib)
        let workspace = DeviceWorkspace(allocator: CUDAAllocator(runtime: fake.runtime))
        _ = try workspace.reserve(Self.mib)
        fake.deviceSyncStatus = cudaErrorIllegalAddress
        XCTAssertThrowsError(try workspace.reserve(2 * Self.mib)) { error in
            XCTAssertTrue((error as? CUDAError)?.call.contains("workspace") ?? false, "\(error)")
        }
        XCTAssertEqual(fake.frees, 0)
    }

    func testSyncEveryCallNamesTheFaultingCall() throws {
        XCTAssertFalse(CUDADebug.syncEveryCall(nil))
        XCTAssertFalse(CUDADebug.syncEveryCall("0"))
        XCTAssertFalse(CUDADebug.syncEveryCall(""))
        XCTAssertTrue(CUDADebug.syncEveryCall("1"))
        let fake = FakeCUDARuntime(limit: Self.mib)
        fake.streamSyncStatus = cudaErrorIllegalAddress
        XCTAssertThrowsError(try fake.runtime.synchronize(nil, after: "cudaLaunchKernel(relu_forward)")) { error in
            XCTAssertEqual((error as? CUDAError)?.call, "cudaStreamSynchronize after cudaLaunchKernel(relu_forward)")
            XCTAssertTrue("\(error)".contains("relu_forward"), "\(error)")
        }
    }

    // MARK: 7. Each direction is searched on its first use only

    func testEachDirectionIsSearchedOnFirstUseOnly() throws {
        let fake = FakeCUDARuntime(limit: 64 * Self.mib)
        var counts = [0, 0, 0]
        let algorithms = ConvolutionAlgorithms(strictFP32: false, allocator: CUDAAllocator(runtime: fake.runtime),
                                               search: search(fake, counting: &counts))
        for _ in 0..<3 { _ = try algorithms.choice(.forward, what: "eval batch") }
        XCTAssertEqual(counts, [1, 0, 0], "forward-only use (evaluation, a last partial batch) searches forward only")
        _ = try algorithms.choice(.backwardFilter, what: "train")
        _ = try algorithms.choice(.backwardData, what: "train")
        _ = try algorithms.choice(.backwardData, what: "train")
        XCTAssertEqual(counts, [1, 1, 1])
    }

    // MARK: 8. Host work per launch

    func testCallNameIsFormattedOnlyOnFailure() throws {
        var formatted = 0
        func name() -> String { formatted += 1; return "cudaLaunchKernel(add_f32)" }
        for _ in 0..<100 { try CUDACalls.check(.cudart, name()) { 0 } }
        XCTAssertEqual(formatted, 0, "a successful call builds no name")
        XCTAssertThrowsError(try CUDACalls.check(.cudart, name()) { 2 }) { error in
            XCTAssertEqual((error as? CUDAError)?.call, "cudaLaunchKernel(add_f32)")
        }
        XCTAssertEqual(formatted, 1)
    }

    func testKernelOrdinalsMatchAllCases() {
        for (i, kernel) in CUDAKernelSource.Kernel.allCases.enumerated() {
            XCTAssertEqual(kernel.ordinal, i, kernel.rawValue)
        }
    }

    /// The typed launch compiles with the kernel's own argument types (never called: launching
    /// needs a GPU). `launch(CUDAKernels.fill, count: n, t, Float(0), n)` would not compile.
    private func typedLaunchCompiles(_ backend: CUDABackend, _ t: Tensor) {
        backend.launch(CUDAKernels.fill, count: t.count, t, t.count, 0)
        backend.launch(CUDAKernels.softmaxCrossEntropy, count: 1, t, t, t, nil, 1, 1, 1)
    }

    /// Parameters reach their zeroed 8-byte slots as the C parameters read them.
    func testKernelParametersFillTheirSlots() {
        var slots = [UInt64](repeating: 0, count: 5)
        slots.withUnsafeMutableBufferPointer { s in
            let base = UnsafeMutableRawPointer(s.baseAddress!), width = MemoryLayout<UInt64>.stride
            true.store(in: base)
            Float(1.5).store(in: base + width)
            (-3).store(in: base + 2 * width)
            UInt64(9).store(in: base + 3 * width)
            Optional<Tensor>.none.store(in: base + 4 * width)
        }
        XCTAssertEqual(slots[0], 1, "a Bool is an int flag in the low half of a zeroed slot")
        XCTAssertEqual(slots[1], UInt64(Float(1.5).bitPattern))
        XCTAssertEqual(slots[2], UInt64(bitPattern: -3))
        XCTAssertEqual(slots[3], 9)
        XCTAssertEqual(slots[4], 0, "a missing tensor is a null pointer")
    }
}
#endif
