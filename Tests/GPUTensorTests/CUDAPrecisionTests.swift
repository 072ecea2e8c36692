#if CUDA
import CCuda
import XCTest
@testable import GPUTensor

/// The CUDA backend's reduced-precision choices as pure functions, without a GPU: the data types
/// cuDNN and cuBLAS get per precision, which GPUs refuse which precision, the plans' cache key,
/// the algorithms a reduced precision may use, and the name.
final class CUDAPrecisionTests: XCTestCase {
    func testDataTypesPerPrecision() {
        let fp32 = CUDAPrecisionFormats(.fp32), bf16 = CUDAPrecisionFormats(.bf16), fp16 = CUDAPrecisionFormats(.fp16)
        XCTAssertEqual(fp32.cudnnData, CUDNN_DATA_FLOAT)
        XCTAssertEqual(bf16.cudnnData, CUDNN_DATA_BFLOAT16)
        XCTAssertEqual(fp16.cudnnData, CUDNN_DATA_HALF)
        XCTAssertEqual(fp32.blasInput, CUDA_R_32F)
        XCTAssertEqual(bf16.blasInput, CUDA_R_16BF)
        XCTAssertEqual(fp16.blasInput, CUDA_R_16F)
        for f in [fp32, bf16, fp16] {
            // FP32 accumulation and an FP32 GEMM result in every precision (cuDNN's pseudo configs).
            XCTAssertEqual(f.cudnnCompute, CUDNN_DATA_FLOAT)
            XCTAssertEqual(f.blasOutput, CUDA_R_32F)
            XCTAssertEqual(f.blasCompute, CUBLAS_COMPUTE_32F)
        }
        XCTAssertEqual([fp32, bf16, fp16].map(\.operandBytes), [4, 2, 2])
        XCTAssertEqual([fp32, bf16, fp16].map(\.widensConvolutionOutput), [false, true, true])
    }

    func testBF16NeedsAmpere() {
        XCTAssertNil(CUDAPrecisionFormats.unsupportedReason(.bf16, computeCapability: (8, 0)))
        XCTAssertNil(CUDAPrecisionFormats.unsupportedReason(.bf16, computeCapability: (9, 0)))
        let volta = CUDAPrecisionFormats.unsupportedReason(.bf16, computeCapability: (7, 0))
        XCTAssertEqual(volta, "--precision bf16 needs compute capability 8.0 (Ampere) or newer; this GPU is sm_70 (fp16 or fp32 run on it)")
        for p in [Precision.fp32, .fp16] {
            XCTAssertNil(CUDAPrecisionFormats.unsupportedReason(p, computeCapability: (6, 0)), "\(p)")
        }
    }

    func testNameSaysTheMath() {
        XCTAssertEqual(CUDAPrecisionFormats.mathName(.fp32, strictFP32: false), "TF32")
        XCTAssertEqual(CUDAPrecisionFormats.mathName(.fp32, strictFP32: true), "strict FP32")
        XCTAssertEqual(CUDAPrecisionFormats.mathName(.bf16, strictFP32: true), "bf16 tensor cores, FP32 accumulation")
        XCTAssertEqual(CUDAPrecisionFormats.mathName(.fp16, strictFP32: false), "fp16 tensor cores, FP32 accumulation")
    }

    func testPlansAreKeyedByPrecision() {
        let g = ConvGeometry(batch: 2, inChannels: 3, height: 8, width: 8, outChannels: 4, kernel: 3, padding: 1)
        let keys = Set(Precision.allCases.map { ConvPlanKey(geometry: g, layout: .nhwc, precision: $0) })
        XCTAssertEqual(keys.count, 3)
        XCTAssertEqual(ConvPlanKey(geometry: g, layout: .nhwc), ConvPlanKey(geometry: g, layout: .nhwc, precision: .fp32))
    }

    /// A reduced precision takes GEMM-family algorithms only (not FFT or Winograd, whose rounding
    /// is not the inputs'): the fastest measured one that is.
    func testReducedPrecisionSkipsTransformAlgorithms() throws {
        func row(_ a: UInt32) -> ConvolutionAlgorithm {
            ConvolutionAlgorithm(algorithm: Int32(a), status: CUDNN_STATUS_SUCCESS, mathType: CUDNN_TENSOR_OP_MATH, memory: 0)
        }
        XCTAssertEqual((0...7).map { row(UInt32($0)).sumsProducts(.forward) }, [true, true, true, true, false, false, false, false])
        XCTAssertEqual((0...5).map { row(UInt32($0)).sumsProducts(.backwardData) }, [true, true, false, false, false, false])
        XCTAssertEqual((0...6).map { row(UInt32($0)).sumsProducts(.backwardFilter) }, [true, true, false, true, false, false, false])
        XCTAssertEqual(CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED.rawValue, 7)
        XCTAssertEqual(CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT.rawValue, 2)
        XCTAssertEqual(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING.rawValue, 6)

        let fake = FakeCUDARuntime(limit: 1 << 20)
        let measured = [row(7), row(5), row(1), row(0)]   // Winograd and FFT tiling measured fastest
        let reduced = ConvolutionAlgorithms(strictFP32: false, productsOnly: true, allocator: CUDAAllocator(runtime: fake.runtime)) { _ in measured }
        let fp32 = ConvolutionAlgorithms(strictFP32: false, productsOnly: false, allocator: CUDAAllocator(runtime: fake.runtime)) { _ in measured }
        XCTAssertEqual(try reduced.choice(.forward, what: "test").0.algorithm, 1)
        XCTAssertEqual(try fp32.choice(.forward, what: "test").0.algorithm, 7)
        let none = ConvolutionAlgorithms(strictFP32: false, productsOnly: true, allocator: CUDAAllocator(runtime: fake.runtime)) { _ in [row(7)] }
        XCTAssertThrowsError(try none.choice(.forward, what: "test")) { error in
            XCTAssertTrue("\(error)".contains("GEMM-family algorithms only"), "\(error)")
        }
    }

    func testHalfBufferIsAU16Pointer() {
        XCTAssertEqual(CUDAKernels.roundToBF16.parameterCTypes, [["float*", "const float*"], ["u16*", "const u16*"], ["i64"]])
        XCTAssertTrue(CUDAKernelSource.text.contains("typedef unsigned short u16;"))
    }
}
#endif
