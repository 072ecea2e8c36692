import XCTest
@testable import GPUTensor

/// The argument table of the multi-tensor optimizer launches (`MultiTensorTable`); the kernels
/// that read it are checked against the per-tensor ones in CUDAKernelHostTests (CUDA trait).
final class MultiTensorTableTests: XCTestCase {
    private func entries(_ counts: [Int]) -> [MultiTensorTable.Entry] {
        counts.enumerated().map { t, n in
            .init(pointers: [UInt64(100 + t), UInt64(200 + t), t == 1 ? 0 : UInt64(300 + t)], scalars: [Float(t) + 0.5], count: n)
        }
    }

    func testLayoutPointersThenScalarsThenChunks() {
        let table = MultiTensorTable(entries([5, 3]), pointersPerTensor: 3, scalarsPerTensor: 1, chunkSize: 4)
        XCTAssertEqual(table.scalarsOffset, 6)
        XCTAssertEqual(table.chunksOffset, 8)
        XCTAssertEqual(Array(table.words[0..<6]), [100, 200, 300, 101, 201, 0])
        XCTAssertEqual(Array(table.words[6..<8]), [UInt64(Float(0.5).bitPattern), UInt64(Float(1.5).bitPattern)])
        XCTAssertEqual(table.chunks, [.init(tensor: 0, start: 0, count: 4), .init(tensor: 0, start: 4, count: 1),
                                      .init(tensor: 1, start: 0, count: 3)])
        XCTAssertEqual(Array(table.words[8...]), [0, 0, 4, 0, 4, 1, 1, 0, 3])
        XCTAssertEqual(table.words.count, 8 + 3 * 3)
    }

    /// Every element of every tensor is in exactly one chunk, chunks in order and never longer
    /// than the chunk size; empty tensors have none.
    func testChunksCoverEveryElementOnce() {
        for chunkSize in [1, 3, 64, 1 << 16] {
            let counts = [0, 1, 63, 64, 65, 1000, 0, 70_000, 2]
            let table = MultiTensorTable(entries(counts), pointersPerTensor: 3, scalarsPerTensor: 1, chunkSize: chunkSize)
            var covered = counts.map { [Bool](repeating: false, count: $0) }
            var last = (tensor: -1, end: 0)
            for chunk in table.chunks {
                XCTAssertGreaterThan(chunk.count, 0)
                XCTAssertLessThanOrEqual(chunk.count, chunkSize)
                XCTAssertTrue(chunk.tensor > last.tensor || (chunk.tensor == last.tensor && chunk.start == last.end), "\(chunk)")
                for i in chunk.start..<chunk.start + chunk.count {
                    XCTAssertFalse(covered[chunk.tensor][i], "element \(i) of tensor \(chunk.tensor) twice")
                    covered[chunk.tensor][i] = true
                }
                last = (chunk.tensor, chunk.start + chunk.count)
            }
            XCTAssertTrue(covered.allSatisfy { $0.allSatisfy { $0 } }, "chunk size \(chunkSize): an element in no chunk")
        }
    }

    func testNoTensorsNoChunks() {
        let table = MultiTensorTable([], pointersPerTensor: 4, scalarsPerTensor: 2)
        XCTAssertTrue(table.chunks.isEmpty)
        XCTAssertTrue(table.words.isEmpty)
    }
}
