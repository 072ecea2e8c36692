#if CUDA
import XCTest
@testable import GPUTensor

/// The CUDA backend's error paths and its kernel source, on a machine without a GPU (CI): the
/// libraries load and explain statuses, NVRTC compiles with no device, and the seam in
/// `CUDACalls` makes any named call fail. Checks that need a GPU are `strata selftest --device cuda`.
final class CUDAErrorTests: XCTestCase {
    override func tearDown() {
        CUDACalls.injectFailure = nil
        super.tearDown()
    }

    // MARK: Formatting

    func testKnownStatusesReadWell() {
        let noDriver = CUDAError(library: .cudart, status: .cudaErrorInsufficientDriver, call: "cudaGetDeviceCount")
        XCTAssertTrue(noDriver.description.hasPrefix("cudaGetDeviceCount failed: "), noDriver.description)
        XCTAssertTrue(noDriver.description.contains("insufficient"), noDriver.description)
        XCTAssertTrue(noDriver.description.contains("cudart status 35"), noDriver.description)
        XCTAssertTrue(noDriver.description.contains("no NVIDIA driver"), noDriver.description)

        // cuDNN 9: CUDNN_STATUS_NOT_INITIALIZED = 1001; cuBLAS: CUBLAS_STATUS_NOT_INITIALIZED = 1;
        // NVRTC: NVRTC_ERROR_COMPILATION = 6.
        let dnn = CUDAError(library: .cudnn, status: .init(rawValue: 1001), call: "cudnnCreate")
        XCTAssertTrue(dnn.reason.contains("NOT_INITIALIZED"), dnn.description)
        let blas = CUDAError(library: .cublas, status: .init(rawValue: 1), call: "cublasCreate")
        XCTAssertFalse(blas.reason.isEmpty)
        XCTAssertTrue(blas.description.contains("cublas status 1"), blas.description)
        let rtc = CUDAError(library: .nvrtc, status: .init(rawValue: 6), call: "nvrtcCompileProgram", detail: "log line")
        XCTAssertTrue(rtc.reason.uppercased().contains("COMPILATION"), rtc.description)
        XCTAssertTrue(rtc.description.hasSuffix("\nlog line"), rtc.description)
    }

    /// A status no header knows (a newer library) is carried and printed, never trapped on.
    func testUnknownStatusesDoNotTrap() {
        for library in [CUDAError.Library.cudart, .cublas, .cudnn, .nvrtc] {
            let e = CUDAError(library: library, status: .init(rawValue: 987_654), call: "someCall")
            XCTAssertTrue(e.description.contains("\(library.rawValue) status 987654"), e.description)
            XCTAssertFalse(e.reason.isEmpty)
            let negative = CUDAError(library: library, status: .init(rawValue: -3), call: "someCall")
            XCTAssertTrue(negative.description.contains("status -3"), negative.description)
        }
    }

    // MARK: The seam

    func testInjectedFailureNamesTheCallAndSkipsIt() {
        CUDACalls.injectFailure = { library, call in
            library == .cudart && call == "cudaMalloc" ? 2 : nil
        }
        var called = false
        XCTAssertThrowsError(try CUDACalls.check(.cudart, "cudaMalloc") { called = true; return 0 }) { error in
            let e = error as? CUDAError
            XCTAssertEqual(e?.call, "cudaMalloc")
            XCTAssertEqual(e?.status, .cudaErrorMemoryAllocation)
            XCTAssertTrue("\(error)".contains("out of memory"), "\(error)")
        }
        XCTAssertFalse(called, "an injected failure must not call the C function")
        // Other calls go through.
        XCTAssertNoThrow(try CUDACalls.check(.cudart, "cudaFree") { 0 })
    }

    func testInjectedNoDeviceReachesTheFactory() throws {
        CUDACalls.injectFailure = { _, call in call == "cudaGetDeviceCount" ? 100 : nil }
        XCTAssertThrowsError(try BackendFactory.make(.cuda(0))) { error in
            XCTAssertTrue(error is DeviceUnavailable, "\(error)")
            XCTAssertTrue("\(error)".contains("cuda:0"), "\(error)")
            XCTAssertTrue("\(error)".contains("sees no CUDA GPU"), "\(error)")
        }
    }

    func testInjectedNVRTCFailureNamesTheCall() {
        CUDACalls.injectFailure = { library, call in library == .nvrtc && call == "nvrtcCreateProgram" ? 3 : nil }
        XCTAssertThrowsError(try CUDAKernelCompiler.compile(architecture: "sm_90")) { error in
            XCTAssertEqual((error as? CUDAError)?.call, "nvrtcCreateProgram")
        }
    }

    // MARK: This machine (no GPU in CI)

    func testCUDAOnAMachineWithoutDriverSaysWhy() throws {
        do {
            _ = try BackendFactory.make(.cuda(0))
            throw XCTSkip("a GPU answered: this test is for machines without one")
        } catch let error as DeviceUnavailable {
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("device cuda:0 is not usable: "), text)
            XCTAssertTrue(text.contains("driver") || text.contains("no CUDA GPU"), text)
        }
    }

    func testAutoFallsBackToCPUWithOneLineNotice() throws {
        var notices: [String] = []
        let backend = try BackendFactory.make(.auto) { notices.append($0) }
        if backend.device != .cpu { throw XCTSkip("a GPU answered: this test is for machines without one") }
        XCTAssertEqual(notices.count, 1)
        XCTAssertFalse(notices[0].contains("\n"), notices[0])
        XCTAssertTrue(notices[0].contains("using the CPU"), notices[0])
    }

    // MARK: Kernel source (NVRTC works without a GPU)

    func testKernelSourceCompilesForOldAndNewGPUs() throws {
        let version = try CUDAKernelCompiler.nvrtcVersion()
        // CUDA 13 dropped Pascal and Volta; CUDA 12 still builds them.
        let architectures = version.major >= 13 ? ["sm_75", "sm_90"] : ["sm_60", "sm_70", "sm_90"]
        for arch in architectures {
            let cubin = try CUDAKernelCompiler.compile(architecture: arch)
            XCTAssertGreaterThan(cubin.count, 1000, arch)
            XCTAssertEqual(Array(cubin.prefix(4)), [0x7F, 0x45, 0x4C, 0x46], "\(arch): a CUBIN is an ELF file")
        }
    }

    func testCompileErrorCarriesTheLog() {
        XCTAssertThrowsError(try CUDAKernelCompiler.compile("extern \"C\" __global__ void k() { undefined_thing(); }",
                                                            architecture: "sm_90")) { error in
            let e = error as? CUDAError
            XCTAssertEqual(e?.library, .nvrtc)
            XCTAssertTrue(e?.detail?.contains("undefined_thing") ?? false, "\(error)")
        }
    }

    /// Every kernel the backend looks up by name is defined in the source.
    func testEveryKernelNameIsDefined() {
        for kernel in CUDAKernelSource.Kernel.allCases {
            XCTAssertTrue(CUDAKernelSource.text.contains("__global__ void \(kernel.rawValue)("), kernel.rawValue)
        }
    }

    /// Every typed kernel (`CUDAKernel`) against its C signature in the source: the same number
    /// of parameters and, position by position, a Swift type that stands for the C type. With
    /// this, a launch that compiles passes what the kernel reads. A new kernel must be listed.
    func testTypedKernelsMatchTheirCSignatures() throws {
        let typed: [(CUDAKernelSource.Kernel, [Set<String>])] = [
            (CUDAKernels.fill.name, CUDAKernels.fill.parameterCTypes),
            (CUDAKernels.add.name, CUDAKernels.add.parameterCTypes),
            (CUDAKernels.scale.name, CUDAKernels.scale.parameterCTypes),
            (CUDAKernels.axpy.name, CUDAKernels.axpy.parameterCTypes),
            (CUDAKernels.reluForward.name, CUDAKernels.reluForward.parameterCTypes),
            (CUDAKernels.reluBackward.name, CUDAKernels.reluBackward.parameterCTypes),
            (CUDAKernels.multiply.name, CUDAKernels.multiply.parameterCTypes),
            (CUDAKernels.sumPartials.name, CUDAKernels.sumPartials.parameterCTypes),
            (CUDAKernels.argmaxRows.name, CUDAKernels.argmaxRows.parameterCTypes),
            (CUDAKernels.softmaxCrossEntropy.name, CUDAKernels.softmaxCrossEntropy.parameterCTypes),
            (CUDAKernels.dropoutForward.name, CUDAKernels.dropoutForward.parameterCTypes),
            (CUDAKernels.fillUniform.name, CUDAKernels.fillUniform.parameterCTypes),
            (CUDAKernels.fillNormal.name, CUDAKernels.fillNormal.parameterCTypes),
            (CUDAKernels.sgdPlain.name, CUDAKernels.sgdPlain.parameterCTypes),
            (CUDAKernels.sgdMomentum.name, CUDAKernels.sgdMomentum.parameterCTypes),
            (CUDAKernels.rmspropUpdate.name, CUDAKernels.rmspropUpdate.parameterCTypes),
            (CUDAKernels.adamUpdate.name, CUDAKernels.adamUpdate.parameterCTypes),
            (CUDAKernels.scaleOrZero.name, CUDAKernels.scaleOrZero.parameterCTypes),
            (CUDAKernels.randomCropFlip.name, CUDAKernels.randomCropFlip.parameterCTypes),
            (CUDAKernels.normalizeChannels.name, CUDAKernels.normalizeChannels.parameterCTypes),
            (CUDAKernels.shortcutPadForward.name, CUDAKernels.shortcutPadForward.parameterCTypes),
            (CUDAKernels.shortcutPadBackward.name, CUDAKernels.shortcutPadBackward.parameterCTypes),
            (CUDAKernels.maxPoolForward.name, CUDAKernels.maxPoolForward.parameterCTypes),
            (CUDAKernels.maxPoolBackward.name, CUDAKernels.maxPoolBackward.parameterCTypes),
            (CUDAKernels.avgPoolForward.name, CUDAKernels.avgPoolForward.parameterCTypes),
            (CUDAKernels.avgPoolBackward.name, CUDAKernels.avgPoolBackward.parameterCTypes),
            (CUDAKernels.globalAvgPoolForward.name, CUDAKernels.globalAvgPoolForward.parameterCTypes),
            (CUDAKernels.globalAvgPoolBackward.name, CUDAKernels.globalAvgPoolBackward.parameterCTypes),
            (CUDAKernels.sumToSlot.name, CUDAKernels.sumToSlot.parameterCTypes),
            (CUDAKernels.countCorrectToSlot.name, CUDAKernels.countCorrectToSlot.parameterCTypes),
            (CUDAKernels.dropoutForwardNHWC.name, CUDAKernels.dropoutForwardNHWC.parameterCTypes),
            (CUDAKernels.fillUniformNHWC.name, CUDAKernels.fillUniformNHWC.parameterCTypes),
            (CUDAKernels.fillNormalNHWC.name, CUDAKernels.fillNormalNHWC.parameterCTypes),
            (CUDAKernels.randomCropFlipNHWC.name, CUDAKernels.randomCropFlipNHWC.parameterCTypes),
            (CUDAKernels.shortcutPadForwardNHWC.name, CUDAKernels.shortcutPadForwardNHWC.parameterCTypes),
            (CUDAKernels.shortcutPadBackwardNHWC.name, CUDAKernels.shortcutPadBackwardNHWC.parameterCTypes),
            (CUDAKernels.maxPoolForwardNHWC.name, CUDAKernels.maxPoolForwardNHWC.parameterCTypes),
            (CUDAKernels.maxPoolBackwardNHWC.name, CUDAKernels.maxPoolBackwardNHWC.parameterCTypes),
            (CUDAKernels.avgPoolForwardNHWC.name, CUDAKernels.avgPoolForwardNHWC.parameterCTypes),
            (CUDAKernels.avgPoolBackwardNHWC.name, CUDAKernels.avgPoolBackwardNHWC.parameterCTypes),
            (CUDAKernels.globalAvgPoolForwardNHWC.name, CUDAKernels.globalAvgPoolForwardNHWC.parameterCTypes),
            (CUDAKernels.globalAvgPoolBackwardNHWC.name, CUDAKernels.globalAvgPoolBackwardNHWC.parameterCTypes),
            (CUDAKernels.nchwToNHWC.name, CUDAKernels.nchwToNHWC.parameterCTypes),
            (CUDAKernels.nhwcToNCHW.name, CUDAKernels.nhwcToNCHW.parameterCTypes),
            (CUDAKernels.channelSums.name, CUDAKernels.channelSums.parameterCTypes),
            (CUDAKernels.batchNormStatistics.name, CUDAKernels.batchNormStatistics.parameterCTypes),
            (CUDAKernels.batchNormNormalize.name, CUDAKernels.batchNormNormalize.parameterCTypes),
            (CUDAKernels.batchNormInference.name, CUDAKernels.batchNormInference.parameterCTypes),
            (CUDAKernels.batchNormBackwardStatistics.name, CUDAKernels.batchNormBackwardStatistics.parameterCTypes),
            (CUDAKernels.batchNormBackwardData.name, CUDAKernels.batchNormBackwardData.parameterCTypes),
            (CUDAKernels.biasBackwardStatistics.name, CUDAKernels.biasBackwardStatistics.parameterCTypes),
            (CUDAKernels.channelSumsReLU.name, CUDAKernels.channelSumsReLU.parameterCTypes),
            (CUDAKernels.batchNormNormalizeReLU.name, CUDAKernels.batchNormNormalizeReLU.parameterCTypes),
            (CUDAKernels.batchNormInferenceReLU.name, CUDAKernels.batchNormInferenceReLU.parameterCTypes),
            (CUDAKernels.batchNormBackwardDataReLU.name, CUDAKernels.batchNormBackwardDataReLU.parameterCTypes),
            (CUDAKernels.batchNormNormalizeAddReLU.name, CUDAKernels.batchNormNormalizeAddReLU.parameterCTypes),
            (CUDAKernels.batchNormInferenceAddReLU.name, CUDAKernels.batchNormInferenceAddReLU.parameterCTypes),
            (CUDAKernels.sgdMulti.name, CUDAKernels.sgdMulti.parameterCTypes),
            (CUDAKernels.adamMulti.name, CUDAKernels.adamMulti.parameterCTypes),
            (CUDAKernels.roundToBF16.name, CUDAKernels.roundToBF16.parameterCTypes),
            (CUDAKernels.roundToF16.name, CUDAKernels.roundToF16.parameterCTypes),
            (CUDAKernels.widenBF16.name, CUDAKernels.widenBF16.parameterCTypes),
            (CUDAKernels.widenF16.name, CUDAKernels.widenF16.parameterCTypes)
        ]
        XCTAssertEqual(Set(typed.map(\.0)), Set(CUDAKernelSource.Kernel.allCases), "every kernel has a typed signature")
        let text = CUDAKernelSource.text
        for (kernel, swiftTypes) in typed {
            let head = "__global__ void \(kernel.rawValue)("
            let start = try XCTUnwrap(text.range(of: head), kernel.rawValue).upperBound
            let end = try XCTUnwrap(text[start...].firstIndex(of: ")"), kernel.rawValue)
            // "const float* x" -> "const float*": drop the parameter's name (the source writes `float* x`).
            let cTypes = text[start..<end].split(separator: ",").map { parameter -> String in
                var words = parameter.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
                words.removeLast()
                return words.joined(separator: " ")
            }
            XCTAssertEqual(cTypes.count, swiftTypes.count, "\(kernel.rawValue): \(cTypes)")
            for (i, (c, swift)) in zip(cTypes, swiftTypes).enumerated() {
                XCTAssertTrue(swift.contains(c), "\(kernel.rawValue) parameter \(i): C \(c), Swift stands for \(swift)")
            }
        }
    }

    func testAllocatorBuckets() {
        XCTAssertEqual(CUDAAllocator.bucket(1), 512)
        XCTAssertEqual(CUDAAllocator.bucket(513), 1024)
        XCTAssertEqual(CUDAAllocator.bucket(1 << 20), 1 << 20)
        XCTAssertEqual(CUDAAllocator.bucket((1 << 20) + 1), 2 << 20)
        XCTAssertEqual(CUDAAllocator.bucket(5 << 20), 5 << 20)
    }

    // MARK: Libraries opened at run time

    /// Where the CUDA libraries are in this test run: `make test-cuda` puts the prefix first
    /// in LD_LIBRARY_PATH.
    private var libraryDirectory: String? {
        guard let path = ProcessInfo.processInfo.environment["LD_LIBRARY_PATH"] else { return nil }
        return path.split(separator: ":").map(String.init).first {
            FileManager.default.fileExists(atPath: "\($0)/libcudart.so.\(CUDALibraries.sonames.split(separator: " ")[0].split(separator: ".").last!)")
        }
    }

    func testMissingLibrariesAreNamedWithTheirDirectory() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("strata-no-cuda-\(getpid())")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        let (ok, message) = CUDALibraries.probe(directories: empty.path)
        XCTAssertFalse(ok)
        for soname in CUDALibraries.sonames.split(separator: " ") {
            XCTAssertTrue(message.contains("\(soname) (not in \(empty.path))"), message)
        }
        XCTAssertTrue(message.contains("STRATA_CUDA_LIBS"), message)

        // With only the runtime there, the other three are named and the runtime is not.
        guard let directory = libraryDirectory else { throw XCTSkip("no CUDA library directory in LD_LIBRARY_PATH") }
        let runtime = String(CUDALibraries.sonames.split(separator: " ")[0])
        try FileManager.default.createSymbolicLink(atPath: empty.appendingPathComponent(runtime).path,
                                                   withDestinationPath: "\(directory)/\(runtime)")
        let partial = CUDALibraries.probe(directories: "/nonexistent:" + empty.path)
        XCTAssertFalse(partial.ok)
        XCTAssertFalse(partial.message.contains("\(runtime) ("), partial.message)
        XCTAssertTrue(partial.message.contains("libcudnn.so.9 (not in /nonexistent:\(empty.path))"), partial.message)
    }

    func testLibrariesLoadFromTheirDirectory() throws {
        guard let directory = libraryDirectory else { throw XCTSkip("no CUDA library directory in LD_LIBRARY_PATH") }
        let (ok, message) = CUDALibraries.probe(directories: directory)
        XCTAssertTrue(ok, message)
        XCTAssertTrue(CUDALibraries.probe(directories: nil).ok, "the dynamic loader's own search finds them too")
    }
}
#endif
