import Foundation
import XCTest
@testable import GPUTensor

/// The on-disk cache of compiled kernels (`KernelCache`): its folder, key, file format, atomic
/// writes and what it does with damaged or foreign files. No GPU and no NVRTC needed (the real
/// compile and cache hit are in CUDANVRTCTests, CUDA trait only).
final class KernelCacheTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("strata-kernel-cache-\(getpid())-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    private let key = KernelCache.Key(source: "extern \"C\" __global__ void k() {}", options: ["--gpu-architecture=sm_90", "--fmad=false"],
                                      architecture: "sm_90", compiler: "nvrtc 13.0 (/x/libnvrtc.so.13, 1 bytes, modified 2)")
    private let code: [UInt8] = [0x7F, 0x45, 0x4C, 0x46] + (0..<5000).map { UInt8($0 % 251) }

    func testTheFolderComesFromTheEnvironment() {
        XCTAssertEqual(KernelCache.directory(environment: ["STRATA_KERNEL_CACHE": "/a", "XDG_CACHE_HOME": "/b", "HOME": "/c"]), "/a")
        XCTAssertEqual(KernelCache.directory(environment: ["XDG_CACHE_HOME": "/b", "HOME": "/c"]), "/b/strata/kernels")
        XCTAssertEqual(KernelCache.directory(environment: ["XDG_CACHE_HOME": "", "HOME": "/c"]), "/c/.cache/strata/kernels")
        XCTAssertNil(KernelCache.directory(environment: ["STRATA_KERNEL_CACHE": "off", "HOME": "/c"]))
        XCTAssertNil(KernelCache.directory(environment: [:]))
    }

    func testStoredCodeIsReadBackAndTheFolderIsMade() throws {
        let cache = KernelCache(directory: folder.appendingPathComponent("deep/er").path)
        XCTAssertNil(cache.load(key))
        XCTAssertTrue(cache.store(key, code))
        XCTAssertEqual(cache.load(key), code)
        let files = try FileManager.default.contentsOfDirectory(atPath: cache.directory!)
        XCTAssertEqual(files, [key.fileName], "no temporary file left behind")
        XCTAssertTrue(key.fileName.hasPrefix("sm_90-") && key.fileName.hasSuffix(".cubin"), key.fileName)
    }

    func testEveryPartOfTheKeyMatters() throws {
        let cache = KernelCache(directory: folder.path)
        cache.store(key, code)
        var other = [key, key, key, key]
        other[0].source += " "
        other[1].options.append("-G")
        other[2].architecture = "sm_80"
        other[3].compiler = "nvrtc 13.0 (/x/libnvrtc.so.13, 2 bytes, modified 2)"
        for changed in other {
            XCTAssertNil(cache.load(changed), "\(changed)")
            XCTAssertNotEqual(changed.fileName, key.fileName)
        }
    }

    /// A file at the key's name that was made for another key (a hash collision or another
    /// Strata's file) is a miss, not that key's code.
    func testAFileForAnotherKeyIsAMiss() throws {
        let cache = KernelCache(directory: folder.path)
        var foreign = key
        foreign.source = "something else"
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data(KernelCache.encode(key: foreign.bytes, code: [1, 2, 3])).write(to: URL(fileURLWithPath: cache.path(for: key)!))
        XCTAssertNil(cache.load(key))
        XCTAssertTrue(cache.store(key, code), "rewritten")
        XCTAssertEqual(cache.load(key), code)
    }

    func testDamagedFilesAreMissesAndAreRewritten() throws {
        let cache = KernelCache(directory: folder.path)
        cache.store(key, code)
        let path = cache.path(for: key)!
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        var damaged: [Data] = [Data(), Data("not a cache file".utf8), good.prefix(good.count - 1), good.prefix(20), good + Data([0])]
        for position in [0, 9, 14, 30, good.count / 2, good.count - 1] {
            var flipped = good
            flipped[position] ^= 0x40
            damaged.append(flipped)
        }
        // A length field claiming more than the file holds.
        var long = good
        long[12] = 0xFF; long[19] = 0x7F
        damaged.append(long)
        for (i, bytes) in damaged.enumerated() {
            try bytes.write(to: URL(fileURLWithPath: path))
            XCTAssertNil(cache.load(key), "damaged file \(i) was read as code")
            XCTAssertTrue(cache.store(key, code))
            XCTAssertEqual(cache.load(key), code, "damaged file \(i) was not rewritten")
        }
        // A folder where the file should be: a miss, and the store fails without a crash.
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        XCTAssertNil(cache.load(key))
        XCTAssertFalse(cache.store(key, code))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), [key.fileName], "no temporary file left behind")
    }

    func testAnUnwritableFolderOnlyCostsACompile() throws {
        try Data("a file".utf8).write(to: folder)   // the cache folder's path is a file
        let cache = KernelCache(directory: folder.appendingPathComponent("kernels").path)
        XCTAssertFalse(cache.store(key, code))
        XCTAssertNil(cache.load(key))
        XCTAssertFalse(KernelCache(directory: nil).store(key, code))
        XCTAssertNil(KernelCache(directory: nil).load(key))
    }

    /// Processes writing the same key at once: every read sees a whole file (rename is atomic).
    func testConcurrentWritersNeverExposeHalfAFile() throws {
        let cache = KernelCache(directory: folder.path)
        let big = [UInt8](repeating: 7, count: 1 << 20)
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            if i % 2 == 0 {
                for _ in 0..<3 { XCTAssertTrue(cache.store(key, big)) }
            } else {
                for _ in 0..<10 { if let read = cache.load(key) { XCTAssertEqual(read.count, big.count) } }
            }
        }
        XCTAssertEqual(cache.load(key), big)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), [key.fileName])
    }
}
