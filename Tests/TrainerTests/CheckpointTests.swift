import XCTest
import Foundation
@testable import Trainer

/// Bytes of a safetensors file with the given header text (unpadded) and data.
func safetensorsFile(header: String, data: [UInt8] = []) -> [UInt8] {
    let h = Array(header.utf8)
    return withUnsafeBytes(of: UInt64(h.count).littleEndian) { Array($0) } + h + data
}

/// Asserts that decoding `bytes` throws a CheckpointError with `reason` naming `tensor` (when
/// given) and whose message contains each of `fragments`.
func assertCorrupt(_ bytes: [UInt8], _ reason: CheckpointError.Reason, tensor: String? = nil, _ fragments: [String] = [],
                   file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try SafeTensors.decode(bytes, file: "bad.safetensors")
        XCTFail("expected CheckpointError.\(reason), decoded fine", file: file, line: line)
    } catch let error as CheckpointError {
        XCTAssertEqual(error.reason, reason, "\(error)", file: file, line: line)
        XCTAssertEqual(error.file, "bad.safetensors", file: file, line: line)
        XCTAssertTrue(error.description.hasPrefix("bad.safetensors: "), "\(error)", file: file, line: line)
        XCTAssertEqual(error.tensor, tensor, "\(error)", file: file, line: line)
        if let tensor {
            XCTAssertTrue(error.description.contains("tensor \"\(tensor)\""), "\(error)", file: file, line: line)
        }
        for fragment in fragments {
            XCTAssertTrue(error.description.contains(fragment), "\"\(error)\" lacks \"\(fragment)\"", file: file, line: line)
        }
    } catch {
        XCTFail("expected CheckpointError.\(reason), got \(error)", file: file, line: line)
    }
}

final class SafeTensorsTests: XCTestCase {
    /// Tensors with awkward values: NaN payloads, infinities, -0, subnormals, an empty tensor,
    /// an I64 scalar, names and metadata needing JSON escapes.
    func sample() -> SafeTensors {
        var s = SafeTensors(metadata: ["epoch": "12", "config": "{\"depth\": 20,\n \"name\": \"résnet \\\\ \u{01}\"}", "": "empty key"])
        s.append("conv1.weight", shape: [2, 3], floats: [1.5, -0.0, .infinity, -.infinity,
                                                         Float(bitPattern: 0x7fc0_1234), Float(bitPattern: 0x0000_0001)])
        s.append("layer1.0.bn1.num_batches_tracked", shape: [], int64s: [390])
        s.append("empty", shape: [0, 4], floats: [])
        s.append("big.\"quoted\"/name\u{7f}", shape: [1000], floats: (0..<1000).map { Float($0) * 0.001 })
        s.append("steps", shape: [3], int64s: [.min, -1, .max])
        return s
    }

    func assertBitIdentical(_ a: SafeTensors, _ b: SafeTensors, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.metadata, b.metadata, file: file, line: line)
        XCTAssertEqual(a.tensors.map(\.name), b.tensors.map(\.name), file: file, line: line)
        XCTAssertEqual(a.tensors.map(\.shape), b.tensors.map(\.shape), file: file, line: line)
        for (x, y) in zip(a.tensors, b.tensors) {
            switch (x.values, y.values) {
            case let (.float32(u), .float32(v)):
                XCTAssertEqual(u.map(\.bitPattern), v.map(\.bitPattern), x.name, file: file, line: line)
            case let (.int64(u), .int64(v)):
                XCTAssertEqual(u, v, x.name, file: file, line: line)
            default:
                XCTFail("dtype of \(x.name) changed", file: file, line: line)
            }
        }
    }

    func testRoundTripIsBitIdentical() throws {
        let dir = try makeTemporaryDirectory(self)
        let path = dir + "/model.safetensors"
        let s = sample()
        try s.write(to: path)
        let back = try SafeTensors.read(from: path)
        assertBitIdentical(s, back)
        // Same content, same bytes; header padded so data starts 8-byte aligned.
        let bytes = try s.encoded()
        XCTAssertEqual(try back.encoded(), bytes)
        XCTAssertEqual(Array(try Data(contentsOf: URL(fileURLWithPath: path))), bytes)
        let headerLength = bytes[0..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
        XCTAssertEqual(headerLength % 8, 0)
        XCTAssertEqual(bytes[8], UInt8(ascii: "{"))
        // Accessors.
        XCTAssertEqual(try back.int64s("layer1.0.bn1.num_batches_tracked", shape: []), [390])
        XCTAssertEqual(try back.floats("conv1.weight", shape: [2, 3]).count, 6)
        XCTAssertThrowsError(try back.floats("conv1.weight", shape: [3, 2], file: path)) { error in
            XCTAssertEqual((error as? CheckpointError)?.reason, .mismatch)
            XCTAssertEqual((error as? CheckpointError)?.tensor, "conv1.weight")
        }
        XCTAssertThrowsError(try back.floats("fc.bias", file: path)) { error in
            XCTAssertEqual("\(error)", "\(path): tensor \"fc.bias\": is not in the checkpoint")
        }
        XCTAssertThrowsError(try back.floats("steps")) { error in
            XCTAssertEqual((error as? CheckpointError)?.reason, .mismatch)
        }
        // No temporary files left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["model.safetensors"])
    }

    func testWriterRejectsInconsistentTensors() {
        var s = SafeTensors()
        s.append("a", shape: [2], floats: [1])
        XCTAssertThrowsError(try s.encoded()) { XCTAssertEqual(($0 as? CheckpointError)?.reason, .invalidTensors) }
        s = SafeTensors()
        s.append("a", shape: [1], floats: [1])
        s.append("a", shape: [1], floats: [2])
        XCTAssertThrowsError(try s.encoded()) { XCTAssertEqual(($0 as? CheckpointError)?.tensor, "a") }
        s = SafeTensors()
        s.append("__metadata__", shape: [1], floats: [1])
        XCTAssertThrowsError(try s.encoded()) { XCTAssertEqual(($0 as? CheckpointError)?.reason, .invalidTensors) }
    }

    /// Python (json + numpy, independent of this code) reads our file, and writes one we read.
    func testInteroperatesWithPythonNumpy() throws {
        let dir = try makeTemporaryDirectory(self)
        let ours = dir + "/ours.safetensors", theirs = dir + "/theirs.safetensors"
        try sample().write(to: ours)
        let script = #"""
        import json, struct, sys
        try:
            import numpy as np
        except ImportError:
            print("SKIP"); sys.exit(0)
        raw = open(sys.argv[1], "rb").read()
        n = struct.unpack("<Q", raw[:8])[0]
        header = json.loads(raw[8:8 + n])
        data = raw[8 + n:]
        out = {"meta": header.pop("__metadata__", {})}
        for name, t in header.items():
            b, e = t["data_offsets"]
            a = np.frombuffer(data[b:e], dtype={"F32": "<f4", "I64": "<i8"}[t["dtype"]]).reshape(t["shape"])
            out[name] = [t["dtype"], list(a.shape), a.astype(np.float64).sum().item() if t["dtype"] == "F32" and a.size and np.isfinite(a).all() else None, a.view("<u4" if t["dtype"] == "F32" else "<i8").ravel().tolist()[:3]]
        print(json.dumps(out, sort_keys=True))
        # A file in the format as another writer might lay it out: unpadded, spaced JSON,
        # metadata last, tensors out of data order.
        w = np.arange(12, dtype="<f4").reshape(3, 4) / 7
        c = np.array([5], dtype="<i8")
        hdr = {"w": {"dtype": "F32", "shape": [3, 4], "data_offsets": [8, 56]},
               "c": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]},
               "__metadata__": {"format": "pt", "note": "snow \u2603"}}
        h = json.dumps(hdr, indent=1).encode()
        open(sys.argv[2], "wb").write(struct.pack("<Q", len(h)) + h + c.tobytes() + w.tobytes())
        """#
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")   // python3 from PATH (a venv may hold numpy)
        process.arguments = ["python3", "-c", script, ours, theirs]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if process.terminationStatus == 127 { throw XCTSkip("no python3") }
        XCTAssertEqual(process.terminationStatus, 0, output)
        if output.hasPrefix("SKIP") { throw XCTSkip("numpy not available") }
        let parsed = try JSONSerialization.jsonObject(with: Data(output.utf8)) as! [String: Any]
        XCTAssertEqual(parsed["meta"] as? [String: String], sample().metadata)
        let conv = parsed["conv1.weight"] as! [Any]
        XCTAssertEqual(conv[0] as? String, "F32")
        XCTAssertEqual(conv[1] as? [Int], [2, 3])
        XCTAssertEqual((conv[3] as? [Any])?.compactMap { ($0 as? NSNumber)?.intValue }, [Float(1.5), -0.0, .infinity].map { Int($0.bitPattern) })
        let big = parsed["big.\"quoted\"/name\u{7f}"] as! [Any]
        XCTAssertEqual((big[2] as! NSNumber).doubleValue, (0..<1000).reduce(0.0) { $0 + Double(Float($1) * 0.001) }, accuracy: 1e-9)
        XCTAssertEqual(((parsed["steps"] as! [Any])[3] as? [Any])?.compactMap { ($0 as? NSNumber)?.int64Value }, [.min, -1, .max])
        XCTAssertEqual((parsed["layer1.0.bn1.num_batches_tracked"] as! [Any])[1] as? [Int], [])
        XCTAssertEqual((parsed["empty"] as! [Any])[1] as? [Int], [0, 4])

        let back = try SafeTensors.read(from: theirs)
        XCTAssertEqual(back.tensors.map(\.name), ["c", "w"])   // data order
        XCTAssertEqual(back.metadata, ["format": "pt", "note": "snow \u{2603}"])
        XCTAssertEqual(try back.int64s("c"), [5])
        XCTAssertEqual(try back.floats("w", shape: [3, 4]), (0..<12).map { Float($0) / 7 })
    }

    // MARK: Corrupt files: each a clear error, never a crash

    func testHeaderLengthErrors() {
        assertCorrupt([1, 2, 3], .tooShort, ["3 bytes", "shorter than the 8-byte header length"])
        assertCorrupt([], .tooShort)
        assertCorrupt(safetensorsFile(header: "{}").dropLast(1).map { $0 }, .badHeaderLength,
                      ["header length 2 exceeds the 1 bytes"])
        var absurd = safetensorsFile(header: "{}")
        for i in 0..<8 { absurd[i] = 0xff }
        assertCorrupt(absurd, .badHeaderLength, ["header length 18446744073709551615 is absurd"])
    }

    func testHeaderNotJSONObject() {
        assertCorrupt(safetensorsFile(header: "{\"a\": "), .badHeader, ["not valid JSON", "at byte 14"])
        assertCorrupt(safetensorsFile(header: "PK\u{03}\u{04}"), .badHeader, ["not valid JSON", "at byte 8"])
        assertCorrupt(safetensorsFile(header: "[1, 2]"), .badHeader, ["header is an array, expected a JSON object"])
        assertCorrupt(safetensorsFile(header: "{} x"), .badHeader, ["unexpected text after the JSON value"])
        assertCorrupt(safetensorsFile(header: "{\"a\": 1, \"a\": 2}"), .badHeader, ["duplicate key \"a\""])
        assertCorrupt(safetensorsFile(header: "{\"a\": \"\u{01}\"}"), .badHeader, ["control character"])
        assertCorrupt(safetensorsFile(header: "{\"\\ud800\": 1}"), .badHeader, ["surrogate"])
        assertCorrupt(safetensorsFile(header: String(repeating: "[", count: 100_000)), .badHeader, ["nesting deeper"])
        var invalidUTF8 = safetensorsFile(header: "{\"ab\": {}}")
        invalidUTF8[10] = 0xff
        assertCorrupt(invalidUTF8, .badHeader, ["not valid UTF-8"])
    }

    func testEntryErrors() {
        let four: [UInt8] = [0, 0, 128, 63]
        assertCorrupt(safetensorsFile(header: #"{"w": [1]}"#, data: four), .badEntry, tensor: "w", ["entry is an array"])
        assertCorrupt(safetensorsFile(header: #"{"w": {"dtype": "F32", "shape": [1]}}"#, data: four), .badEntry, tensor: "w",
                      ["entry has no \"data_offsets\""])
        assertCorrupt(safetensorsFile(header: #"{"w": {"shape": [1], "data_offsets": [0, 4]}}"#, data: four), .badEntry, tensor: "w",
                      ["entry has no \"dtype\""])
        assertCorrupt(safetensorsFile(header: #"{"w": {"dtype": "F32", "data_offsets": [0, 4]}}"#, data: four), .badEntry, tensor: "w",
                      ["entry has no \"shape\""])
        assertCorrupt(safetensorsFile(header: #"{"w": {"dtype": 32, "shape": [1], "data_offsets": [0, 4]}}"#, data: four),
                      .badEntry, tensor: "w", ["\"dtype\" is a number"])
        assertCorrupt(safetensorsFile(header: #"{"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}"#, data: four),
                      .unsupportedDtype, tensor: "w", ["dtype \"BF16\" is not supported"])
        assertCorrupt(safetensorsFile(header: #"{"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}"#, data: four),
                      .badEntry, tensor: "w", ["dimension -1"])
        assertCorrupt(safetensorsFile(header: #"{"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}"#, data: four),
                      .badEntry, tensor: "w", ["dimension 1.5"])
        assertCorrupt(safetensorsFile(header: #"{"w": {"dtype": "F32", "shape": 1, "data_offsets": [0, 4]}}"#, data: four),
                      .badEntry, tensor: "w", ["\"shape\" is a number"])
        assertCorrupt(safetensorsFile(header: #"{"w": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 4]}}"#, data: four),
                      .badEntry, tensor: "w", ["overflows"])
        assertCorrupt(safetensorsFile(header: #"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}}"#, data: four),
                      .badEntry, tensor: "w", ["[begin, end]"])
        assertCorrupt(safetensorsFile(header: #"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 99999999999999999999999]}}"#, data: four),
                      .badEntry, tensor: "w", ["[begin, end]"])
    }

    func testOffsetErrors() {
        let eight = [UInt8](repeating: 0, count: 8)
        assertCorrupt(safetensorsFile(header: #"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 12]}}"#, data: eight),
                      .badOffsets, tensor: "w", ["[4, 12] run past the 8-byte data section"])
        assertCorrupt(safetensorsFile(header: #"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}"#, data: eight),
                      .badOffsets, tensor: "w", ["end before they begin"])
        assertCorrupt(safetensorsFile(header: #"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 8]}}"#, data: eight),
                      .badOffsets, tensor: "w", ["hold 8 bytes but shape [1] of F32 needs 4"])
        assertCorrupt(safetensorsFile(header: #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#, data: eight),
                      .badOffsets, tensor: "b", ["overlap those of tensor \"a\" [0, 8]"])
        assertCorrupt(safetensorsFile(header: #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#, data: eight),
                      .badOffsets, tensor: "a", ["leave bytes 0..<4"])
        assertCorrupt(safetensorsFile(header: #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#, data: eight),
                      .badOffsets, ["tensors cover 4 bytes but the data section has 8"])
    }

    func testMetadataErrors() {
        assertCorrupt(safetensorsFile(header: #"{"__metadata__": {"epoch": 3}}"#), .badMetadata,
                      ["value for key \"epoch\" is a number, expected a string"])
        assertCorrupt(safetensorsFile(header: #"{"__metadata__": ["x"]}"#), .badMetadata, ["__metadata__ is an array"])
        XCTAssertEqual(try SafeTensors.decode(safetensorsFile(header: #"{"__metadata__": {}}"#)), SafeTensors())
    }

    func testMissingFile() throws {
        let dir = try makeTemporaryDirectory(self)
        XCTAssertThrowsError(try SafeTensors.read(from: dir + "/none.safetensors")) { error in
            XCTAssertEqual((error as? CheckpointError)?.reason, .notFound)
            XCTAssertTrue("\(error)".contains("none.safetensors"), "\(error)")
        }
        XCTAssertThrowsError(try SafeTensors.read(from: dir)) { error in
            XCTAssertEqual((error as? CheckpointError)?.reason, .unreadable, "\(error)")
        }
    }

    /// Every truncation and thousands of random byte corruptions of a valid file: decoding
    /// throws or succeeds, never traps.
    func testTruncatedAndMutatedFilesNeverCrash() throws {
        let bytes = try sample().encoded()
        for n in 0..<bytes.count {
            XCTAssertThrowsError(try SafeTensors.decode(Array(bytes[..<n])), "prefix \(n)")
        }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func random() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(truncatingIfNeeded: state >> 33)
        }
        let headerEnd = 8 + bytes[0..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
        for _ in 0..<3000 {
            var mutated = bytes
            for _ in 0..<(1 + random() % 3) {
                let at = random() % headerEnd   // corrupt the length or the header
                let syntax = Array("{}[],:\"0-9e\\ ".utf8)
                mutated[at] = random() % 3 == 0 ? UInt8(random() % 256) : syntax[random() % syntax.count]
            }
            _ = try? SafeTensors.decode(mutated)
        }
    }

    // MARK: Atomic writes

    func failing(_ step: String, errno code: Int32) -> SystemCalls {
        var calls = SystemCalls.posix
        switch step {
        case "write": calls.write = { _, _ in errno = code; return -1 }
        case "short write": calls.write = { fd, bytes in SystemCalls.posix.write(fd, UnsafeRawBufferPointer(rebasing: bytes.prefix(5))) }
        case "fsync": calls.fsync = { _ in errno = code; return -1 }
        case "rename": calls.rename = { _, _ in errno = code; return -1 }
        default: fatalError(step)
        }
        return calls
    }

    func testFailedWriteLeavesPreviousFileIntact() throws {
        let dir = try makeTemporaryDirectory(self)
        let path = dir + "/ckpt.safetensors"
        var old = SafeTensors(metadata: ["epoch": "1"])
        old.append("w", shape: [2], floats: [1, 2])
        try old.write(to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))

        let new = sample()
        for (step, code, message) in [("write", ENOSPC, "write failed: No space left on device"),
                                      ("fsync", EIO, "fsync failed: Input/output error"),
                                      ("rename", EXDEV, "rename failed")] {
            XCTAssertThrowsError(try new.write(to: path, calls: failing(step, errno: code)), step) { error in
                let e = error as? CheckpointError
                XCTAssertEqual(e?.reason, .writeFailed, step)
                XCTAssertEqual(e?.file, path)
                XCTAssertTrue("\(error)".contains(message), "\(error)")
            }
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before, step)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["ckpt.safetensors"], "temp file left after \(step)")
        }
        // Short writes are continued, not mistaken for success or failure.
        try new.write(to: path, calls: failing("short write", errno: 0))
        assertBitIdentical(try SafeTensors.read(from: path), new)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["ckpt.safetensors"])
    }

    func testWriteIntoMissingOrReadOnlyDirectory() throws {
        let dir = try makeTemporaryDirectory(self)
        XCTAssertThrowsError(try sample().write(to: dir + "/missing/ckpt.safetensors")) { error in
            XCTAssertEqual((error as? CheckpointError)?.reason, .writeFailed)
            XCTAssertTrue("\(error)".contains("missing/ckpt.safetensors: checkpoint not written: open failed: No such file or directory"), "\(error)")
        }
        // A read-only directory (meaningless when running as root, who may write anyway).
        guard getuid() != 0 else { return }
        let locked = dir + "/locked"
        try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: false)
        let path = locked + "/ckpt.safetensors"
        try sample().write(to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        chmod(locked, 0o555)
        defer { chmod(locked, 0o755) }
        XCTAssertThrowsError(try SafeTensors().write(to: path)) { error in
            XCTAssertEqual((error as? CheckpointError)?.reason, .writeFailed)
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
    }
}
