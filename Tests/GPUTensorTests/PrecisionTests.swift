import XCTest
import CDNNL
@testable import GPUTensor

/// The CPU backend in bf16 (issue 25): bf16 inputs to convolutions and GEMMs, FP32 accumulation,
/// checked against float64 with bounds derived from the formats (Verification/PrecisionChecks.swift),
/// and the factory's refusals.
final class PrecisionTests: XCTestCase {
    private func bf16Backend() throws -> CPUBackend {
        guard CPUBackend.supportsBF16 else { throw XCTSkip("this CPU lacks AVX-512 BF16 (oneDNN: \(DNNLInstructionSet.name))") }
        return CPUBackend(threads: 2, precision: .bf16)
    }

    private func results(_ backend: Backend) -> [CheckResult] {
        var out = [CheckResult]()
        _ = KernelChecks.run(KernelChecks.precisionChecks(.bf16), on: backend) { out.append($0) }
        return out
    }

    func testBF16ConvolutionsAndGEMMsMeetTheFormatsBounds() throws {
        let all = results(try bf16Backend())
        XCTAssertEqual(all.filter { !$0.passed }.map(\.summary), [])
        // The worst of each kind, for the log (how far inside its bound each kind stays).
        for kind in ["of bf16-rounded inputs", "of unrounded inputs", "is not FP32"] {
            if let worst = all.filter({ $0.name.contains(kind) }).max(by: { $0.worstRatio < $1.worstRatio }) {
                print("worst \(kind): \(worst.summary)")
            }
        }
        // 6 shapes x 3 directions (+1 overwrite), 16 GEMMs; 2 comparisons each, plus the detectors.
        XCTAssertEqual(all.filter { $0.name.contains("rounded inputs") && !$0.name.contains("unrounded") }.count, 19 + 16)
        XCTAssertEqual(all.filter { $0.name.contains("is not FP32") }.count, 6 + 2)
    }

    /// The same checks on an FP32 backend: every comparison with the bf16-rounded reference and
    /// every FP32 detector must fail (they cannot pass vacuously), while FP32 stays within bf16's
    /// bound of the unrounded reference.
    func testTheChecksFailOnAnFP32Backend() {
        let all = results(CPUBackend(threads: 2))
        let rounded = all.filter { $0.name.contains("of bf16-rounded inputs") }
        let detectors = all.filter { $0.name.contains("is not FP32") }
        let unrounded = all.filter { $0.name.contains("unrounded inputs") }
        XCTAssertFalse(rounded.isEmpty)
        XCTAssertEqual(rounded.filter(\.passed).map(\.summary), [])
        XCTAssertEqual(detectors.count, 8)
        XCTAssertEqual(detectors.filter(\.passed).map(\.summary), [])
        XCTAssertEqual(unrounded.filter { !$0.passed }.map(\.summary), [])
    }

    func testBF16RoundingIsToNearestEven() {
        let ulp = Float(1) / 128   // bf16's spacing above 1
        XCTAssertEqual(bf16Rounded(1 + ulp / 2), 1, "a tie rounds to the even neighbour (down)")
        XCTAssertEqual(bf16Rounded(1 + 3 * ulp / 2), 1 + 2 * ulp, "a tie rounds to the even neighbour (up)")
        XCTAssertEqual(bf16Rounded(1 + ulp / 2 + ulp / 1024), 1 + ulp, "above the tie rounds up")
        XCTAssertEqual(bf16Rounded(-(1 + ulp / 4)), -1)
        XCTAssertEqual(bf16Rounded(.greatestFiniteMagnitude), .infinity, "beyond bf16's largest finite")
        XCTAssertTrue(bf16Rounded(.nan).isNaN)
        XCTAssertEqual(bf16Rounded(-0.0).sign, .minus)
        XCTAssertEqual(Precision.bf16.rounded(1.0 / 3), Double(Float(bitPattern: 0x3EAB_0000)))
    }

    /// bf16 plans run oneDNN's AVX-512 BF16 kernels, not its reference loops, on the conv shapes
    /// of resnet20 and the seed cnn, grouped ones too, and never Winograd (FP32 only).
    func testBF16PlansUseAVX512BF16Kernels() throws {
        let backend = try bf16Backend()
        let shapes = [ConvGeometry(batch: 8, inChannels: 3, height: 32, width: 32, outChannels: 16, kernel: 3, stride: 1, padding: 1),
                      ConvGeometry(batch: 8, inChannels: 16, height: 32, width: 32, outChannels: 32, kernel: 3, stride: 2, padding: 1),
                      ConvGeometry(batch: 8, inChannels: 64, height: 8, width: 8, outChannels: 64, kernel: 3, stride: 1, padding: 1),
                      ConvGeometry(batch: 8, inChannels: 48, height: 14, width: 14, outChannels: 48, kernel: 3, stride: 1, padding: 1),
                      ConvGeometry(batch: 8, inChannels: 96, height: 8, width: 8, outChannels: 96, kernel: 3, stride: 1, padding: 1, groups: 3)]
        for g in shapes {
            let plan = backend.dnnl.plan(g, bias: false, precision: .bf16)
            XCTAssertEqual(plan.algorithm, dnnl_convolution_direct, "\(g)")
            for name in plan.implementations {
                XCTAssertTrue(name.hasSuffix("avx512_core_bf16"), "\(g): \(plan.implementations)")
            }
            // Inputs go through a bf16 copy, outputs are written in place (FP32 NHWC).
            XCTAssertNotNil(plan.src.reorder)
            XCTAssertNil(plan.dst.reorder)
            XCTAssertNil(plan.backwardData.diffSrc.reorder)
            XCTAssertNotNil(plan.backwardData.diffDst.reorder)
        }
        // The FP32 plan of one geometry is a different plan (cached per precision).
        XCTAssertFalse(backend.dnnl.plan(shapes[2], bias: false, precision: .fp32)
                       === backend.dnnl.plan(shapes[2], bias: false, precision: .bf16))
    }

    /// Large bf16 GEMMs run oneDNN's bf16 matmul kernel (small ones sgemm on rounded copies).
    func testLargeBF16GEMMsUseTheBF16Matmul() throws {
        let backend = try bf16Backend()
        let key = DNNLMatmulPlan.Key(transposeA: true, transposeB: false, m: 128, n: 250, k: 500,
                                     alphaBits: Float(1).bitPattern, betaBits: Float(0.5).bitPattern)
        XCTAssertGreaterThanOrEqual(key.m * key.n * key.k, DNNLMatmulPlan.minimumWork)
        let implementation = DNNLMatmulPlan(key, context: backend.dnnl).implementation
        XCTAssertTrue(implementation.hasSuffix("avx512_core_bf16"), implementation)
    }

    func testTheFactoryRefusesWhatTheCPUCannotCompute() throws {
        for choice in [DeviceChoice.cpu] + (BackendFactory.hasCUDA ? [] : [.auto]) {
            XCTAssertThrowsError(try BackendFactory.make(choice, precision: .fp16)) { error in
                XCTAssertEqual("\(error)", "device cpu is not usable: the CPU backend computes in fp32 or bf16; fp16 is a CUDA precision")
            }
        }
        let noBF16 = try XCTUnwrap(CPUBackend.refusal(.bf16, hasBF16: false))
        XCTAssertTrue(noBF16.contains("AVX-512 BF16") && !noBF16.contains("\n"), noBF16)
        XCTAssertNil(CPUBackend.refusal(.bf16, hasBF16: true))
        XCTAssertNil(CPUBackend.refusal(.fp32, hasBF16: false))
        XCTAssertEqual(CPUBackend.refusal(.fp16, hasBF16: true), CPUBackend.fp16Refusal)

        if CPUBackend.supportsBF16 {
            let backend = try BackendFactory.make(.cpu, threads: 2, precision: .bf16)
            XCTAssertEqual(backend.precision, .bf16)
            XCTAssertEqual(backend.name, "cpu (oneDNN \(DNNLInstructionSet.name), 2 threads, bf16)")
        } else {
            XCTAssertThrowsError(try BackendFactory.make(.cpu, precision: .bf16))
        }
        XCTAssertFalse(try BackendFactory.make(.cpu, threads: 1).name.contains("fp32"), "FP32's name is unchanged")
    }

    /// selftest on a bf16 CPU backend: the float64 suite on an FP32 backend (its FP32 tolerances),
    /// then the bf16 checks on the bf16 one, or a SKIP line.
    func testSelfTestPlanOfABF16Backend() throws {
        let fp32 = CPUBackend(threads: 1)
        let suites = try SelfTestSuite.plan(for: fp32, strictFP32: false, makeStrict: { XCTFail(); return fp32 },
                                            crossDevice: [], precision: .bf16)
        XCTAssertTrue(suites[0].backend === fp32)
        if CPUBackend.supportsBF16 {
            XCTAssertEqual(suites.map(\.label), ["float64 ref, FP32", "float64 ref, bf16 inputs, FP32 accumulation"])
            XCTAssertEqual(suites[1].backend.precision, .bf16)
            let bf16 = try bf16Backend()
            let own = try SelfTestSuite.plan(for: bf16, strictFP32: false, makeStrict: { XCTFail(); return bf16 }, crossDevice: [])
            XCTAssertEqual(own[0].backend.precision, .fp32, "FP32 tolerances run on an FP32 backend")
            XCTAssertTrue(own[1].backend === bf16)
        } else {
            XCTAssertEqual(suites.map(\.label), ["float64 ref, FP32", "SKIP bf16 checks: this CPU lacks AVX-512 BF16"])
            XCTAssertTrue(suites[1].checks.isEmpty)
        }
    }
}
