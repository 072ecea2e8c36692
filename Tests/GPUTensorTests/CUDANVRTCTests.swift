#if CUDA
import CCudaLoader
import Foundation
import XCTest
@testable import GPUTensor

/// NVRTC as the backend starts it, without a GPU: the builtins library found through
/// `STRATA_CUDA_LIBS` alone (NVRTC 13.0.x looks for it through the dynamic loader only), and the
/// kernel cache with a real compile. Needs the CUDA libraries (make test-cuda sets
/// LD_LIBRARY_PATH to them); skipped without them.
final class CUDANVRTCTests: XCTestCase {
    /// The folder of the CUDA libraries on LD_LIBRARY_PATH (make test-cuda puts it there).
    private var libraryDirectory: String? {
        guard let path = ProcessInfo.processInfo.environment["LD_LIBRARY_PATH"] else { return nil }
        let nvrtc = CUDALibraries.sonames.split(separator: " ").first { $0.hasPrefix("libnvrtc") }.map(String.init) ?? ""
        return path.split(separator: ":").map(String.init).first { FileManager.default.fileExists(atPath: "\($0)/\(nvrtc)") }
    }

    static let childVariable = "STRATA_TEST_NVRTC_CHILD"

    /// Runs `testChildCompilesWithTheLibrariesFolderOnly` in a new process of this test binary
    /// with `STRATA_CUDA_LIBS` set and no `LD_LIBRARY_PATH`, as scripts/gpu-check.sh runs strata
    /// (the loader's state is per process, so it cannot be checked in this one).
    func testNVRTCCompilesWithOnlyStrataCudaLibs() throws {
        guard let directory = libraryDirectory else { throw XCTSkip("no CUDA library folder in LD_LIBRARY_PATH") }
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let child = Process()
        child.executableURL = URL(fileURLWithPath: executable)
        child.arguments = ["GPUTensorTests.CUDANVRTCTests/testChildCompilesWithTheLibrariesFolderOnly"]
        var environment = ProcessInfo.processInfo.environment
        environment["LD_LIBRARY_PATH"] = nil
        environment["STRATA_CUDA_LIBS"] = directory
        environment[Self.childVariable] = "1"
        child.environment = environment
        let output = Pipe()
        child.standardOutput = output
        child.standardError = output
        try child.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        child.waitUntilExit()
        XCTAssertEqual(child.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("Executed 1 test, with 0 failures"), text)
        XCTAssertFalse(text.contains("skipped"), text)
        XCTAssertTrue(text.contains("builtins: \(directory)/libnvrtc-builtins.so."), text)
    }

    /// Only in the child process of the test above.
    func testChildCompilesWithTheLibrariesFolderOnly() throws {
        guard ProcessInfo.processInfo.environment[Self.childVariable] == "1" else {
            throw XCTSkip("runs as the child of testNVRTCCompilesWithOnlyStrataCudaLibs")
        }
        XCTAssertNil(ProcessInfo.processInfo.environment["LD_LIBRARY_PATH"])
        var message = [CChar](repeating: 0, count: 2048)
        XCTAssertEqual(strata_cuda_load(&message, Int32(message.count)), 0, String(cString: message))
        let cubin = try CUDAKernelCompiler.compile("extern \"C\" __global__ void k(float* x) { x[0] = sqrtf(2.0f); }",
                                                   architecture: "sm_90")
        XCTAssertEqual(Array(cubin.prefix(4)), [0x7F, 0x45, 0x4C, 0x46])
        let builtins = String(cString: strata_cuda_nvrtc_builtins())
        print("builtins: \(builtins)")
        XCTAssertFalse(builtins.isEmpty, "NVRTC's builtins were not opened next to it")
    }

    /// The backend's path to its kernels: compiled once, then from this process's memory, then
    /// (in a "new process", the memory forgotten) from the disk cache; a damaged file recompiled.
    func testKernelsComeFromTheCacheAfterTheFirstCompile() throws {
        guard libraryDirectory != nil else { throw XCTSkip("no CUDA library folder in LD_LIBRARY_PATH") }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("strata-nvrtc-cache-\(getpid())")
        defer { try? FileManager.default.removeItem(at: folder) }
        let cache = KernelCache(directory: folder.path)
        CUDAKernelCompiler.forgetCompiled()
        defer { CUDAKernelCompiler.forgetCompiled() }

        let first = try CUDAKernelCompiler.kernels(architecture: "sm_90", cache: cache)
        XCTAssertEqual(first.origin, .nvrtc)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        XCTAssertEqual(files.count, 1, "\(files)")
        XCTAssertTrue(files[0].hasPrefix("sm_90-"), files[0])

        let again = try CUDAKernelCompiler.kernels(architecture: "sm_90", cache: cache)
        XCTAssertEqual(again.origin, .process)
        XCTAssertEqual(again.cubin, first.cubin)

        CUDAKernelCompiler.forgetCompiled()
        let started = Date()
        let fromDisk = try CUDAKernelCompiler.kernels(architecture: "sm_90", cache: cache)
        XCTAssertEqual(fromDisk.origin, .disk)
        XCTAssertEqual(fromDisk.cubin, first.cubin)
        print("kernel cache hit in \(Date().timeIntervalSince(started)) s")

        // A damaged file: compiled again and rewritten.
        let path = folder.appendingPathComponent(files[0]).path
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path))
        CUDAKernelCompiler.forgetCompiled()
        XCTAssertEqual(try CUDAKernelCompiler.kernels(architecture: "sm_90", cache: cache).origin, .nvrtc)
        CUDAKernelCompiler.forgetCompiled()
        XCTAssertEqual(try CUDAKernelCompiler.kernels(architecture: "sm_90", cache: cache).origin, .disk)

        // Another architecture is another file.
        XCTAssertEqual(try CUDAKernelCompiler.kernels(architecture: "sm_80", cache: cache).origin, .nvrtc)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path).count, 2)
    }

    func testTheCompilerIdentityNamesTheLibraryFile() throws {
        guard libraryDirectory != nil else { throw XCTSkip("no CUDA library folder in LD_LIBRARY_PATH") }
        let identity = try CUDAKernelCompiler.identity()
        XCTAssertTrue(identity.hasPrefix("nvrtc 1"), identity)
        XCTAssertTrue(identity.contains("libnvrtc.so"), identity)
        XCTAssertTrue(identity.contains(" bytes, modified "), identity)
    }
}
#endif
