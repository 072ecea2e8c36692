import XCTest
@testable import GPUTensor

/// `STRATA_CUDA_LAYOUT` and `STRATA_CUDA_BN` (CUDALayout.swift): what they accept and the one line
/// they give otherwise.
/// Runs in every build (the layout's parsing needs no CUDA).
final class CUDALayoutTests: XCTestCase {
    func testUnsetOrEmptyIsTheDefault() throws {
        XCTAssertEqual(try CUDALayout.parse(environment: nil), CUDALayout.standard)
        XCTAssertEqual(try CUDALayout.parse(environment: ""), CUDALayout.standard)
        XCTAssertEqual(try CUDALayout.parse(environment: "  "), CUDALayout.standard)
        XCTAssertEqual(CUDALayout.standard, .nhwc, "channels-last is the default since the GPU check of 2026-11-30")
    }

    func testUnsetPicksByTheTrainingBatch() throws {
        // NCHW below 64 images per step (cuDNN's NHWC backward-data is slower there), else the default.
        XCTAssertEqual(try CUDALayout.choose(environment: nil, batch: 32), .nchw)
        XCTAssertEqual(try CUDALayout.choose(environment: " ", batch: 63), .nchw)
        XCTAssertEqual(try CUDALayout.choose(environment: nil, batch: 64), .nhwc)
        XCTAssertEqual(try CUDALayout.choose(environment: "", batch: 128), .nhwc)
        XCTAssertEqual(try CUDALayout.choose(environment: nil, batch: nil), CUDALayout.standard)
        // The variable, when set, wins over the batch size, and a bad value is still an error.
        XCTAssertEqual(try CUDALayout.choose(environment: "nhwc", batch: 32), .nhwc)
        XCTAssertEqual(try CUDALayout.choose(environment: "NCHW", batch: 128), .nchw)
        XCTAssertThrowsError(try CUDALayout.choose(environment: "channels_last", batch: 32))
    }

    func testBothLayoutsInAnyCase() throws {
        XCTAssertEqual(try CUDALayout.parse(environment: "nhwc"), .nhwc)
        XCTAssertEqual(try CUDALayout.parse(environment: "NHWC"), .nhwc)
        XCTAssertEqual(try CUDALayout.parse(environment: " nchw "), .nchw)
        XCTAssertEqual(try CUDALayout.parse(environment: "NCHW"), .nchw)
    }

    func testAnythingElseIsOneLineNamingTheVariable() {
        for bad in ["channels_last", "nhw", "1", "nhwc,nchw"] {
            XCTAssertThrowsError(try CUDALayout.parse(environment: bad), bad) { error in
                let line = "\(error)"
                XCTAssertEqual(error as? CUDASettingError,
                               CUDASettingError(variable: "STRATA_CUDA_LAYOUT", value: bad, choices: ["nchw", "nhwc"]))
                XCTAssertTrue(line.contains("STRATA_CUDA_LAYOUT") && line.contains("'\(bad)'"), line)
                XCTAssertTrue(line.contains("nhwc") && line.contains("nchw"), line)
                XCTAssertFalse(line.contains("\n"), line)
            }
        }
    }

    func testBatchNormMode() throws {
        XCTAssertEqual(try CUDABatchNormMode.parse(environment: nil), .strata, "our channels-last kernels by default")
        XCTAssertEqual(try CUDABatchNormMode.parse(environment: "Persistent"), .persistent)
        XCTAssertEqual(try CUDABatchNormMode.parse(environment: "cudnn"), .cudnn)
        XCTAssertThrowsError(try CUDABatchNormMode.parse(environment: "spatial")) { error in
            XCTAssertEqual("\(error)", "STRATA_CUDA_BN='spatial': expected strata or cudnn or persistent")
        }
    }

    #if CUDA
    func testUploadMode() throws {
        XCTAssertEqual(try CUDAUploadMode.parse(environment: nil), .ring, "uploads queue ahead by default")
        XCTAssertEqual(try CUDAUploadMode.parse(environment: "SYNC"), .sync)
        XCTAssertThrowsError(try CUDAUploadMode.parse(environment: "wait")) { error in
            XCTAssertEqual("\(error)", "STRATA_CUDA_UPLOAD='wait': expected ring or sync")
        }
    }

    func testGraphMode() throws {
        XCTAssertEqual(try CUDAGraphMode.parse(environment: nil), .off, "CUDA graphs only when asked for")
        XCTAssertEqual(try CUDAGraphMode.parse(environment: "ON"), .on)
        XCTAssertThrowsError(try CUDAGraphMode.parse(environment: "1")) { error in
            XCTAssertEqual("\(error)", "STRATA_CUDA_GRAPHS='1': expected off or on")
        }
    }
    #endif
}
