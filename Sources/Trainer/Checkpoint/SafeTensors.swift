#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The values of one tensor, in a dtype safetensors names.
public enum TensorValues: Equatable, Sendable {
    /// "F32".
    case float32([Float])
    /// "I64" (BatchNorm's `num_batches_tracked`, step counters).
    case int64([Int64])

    public var count: Int {
        switch self {
        case .float32(let v): return v.count
        case .int64(let v): return v.count
        }
    }

    /// The safetensors dtype name.
    public var dtype: String {
        switch self {
        case .float32: return "F32"
        case .int64: return "I64"
        }
    }

    static func elementSize(dtype: String) -> Int? {
        switch dtype {
        case "F32": return 4
        case "I64": return 8
        default: return nil
        }
    }
}

/// A safetensors file (https://github.com/huggingface/safetensors): an 8-byte little-endian
/// header length N, N bytes of JSON header
/// `{"__metadata__": {"k": "v"}, "name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...}`
/// padded with spaces to a multiple of 8, then the tensors' little-endian bytes, contiguous and
/// in order (offsets relative to the data section). PyTorch reads it with
/// `safetensors.torch.load_file` and loads it with `load_state_dict(strict=True)`.
///
///     var checkpoint = SafeTensors(metadata: ["epoch": "12"])
///     checkpoint.append("conv1.weight", shape: [16, 3, 3, 3], floats: weights)
///     checkpoint.append("bn1.num_batches_tracked", shape: [], int64s: [390])
///     try checkpoint.write(to: "run/checkpoint.safetensors")    // atomic
///     let back = try SafeTensors.read(from: "run/checkpoint.safetensors")
///     let w = try back.floats("conv1.weight", shape: [16, 3, 3, 3])
public struct SafeTensors: Equatable, Sendable {
    public struct Entry: Equatable, Sendable {
        public var name: String
        /// Row-major shape; [] is a scalar (one element).
        public var shape: [Int]
        public var values: TensorValues

        public init(name: String, shape: [Int], values: TensorValues) {
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    /// Tensors in file order.
    public var tensors: [Entry]
    /// String key/value pairs of the header's `__metadata__`.
    public var metadata: [String: String]

    /// Headers above this are refused as corrupt (the reference implementation's limit).
    public static let maxHeaderLength = 100_000_000
    static let metadataKey = "__metadata__"

    public init(tensors: [Entry] = [], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    public mutating func append(_ name: String, shape: [Int], floats: [Float]) {
        tensors.append(Entry(name: name, shape: shape, values: .float32(floats)))
    }

    public mutating func append(_ name: String, shape: [Int], int64s: [Int64]) {
        tensors.append(Entry(name: name, shape: shape, values: .int64(int64s)))
    }

    /// The first tensor named `name`.
    public subscript(name: String) -> Entry? {
        tensors.first { $0.name == name }
    }

    /// The F32 values of tensor `name`, checking its shape when `shape` is given.
    /// `file` only labels the error.
    public func floats(_ name: String, shape: [Int]? = nil, file: String = "checkpoint") throws -> [Float] {
        let entry = try lookup(name, shape: shape, file: file)
        guard case .float32(let values) = entry.values else {
            throw CheckpointError(.mismatch, file: file, tensor: name, "has dtype \(entry.values.dtype), expected F32")
        }
        return values
    }

    /// The I64 values of tensor `name`, checking its shape when `shape` is given.
    public func int64s(_ name: String, shape: [Int]? = nil, file: String = "checkpoint") throws -> [Int64] {
        let entry = try lookup(name, shape: shape, file: file)
        guard case .int64(let values) = entry.values else {
            throw CheckpointError(.mismatch, file: file, tensor: name, "has dtype \(entry.values.dtype), expected I64")
        }
        return values
    }

    private func lookup(_ name: String, shape: [Int]?, file: String) throws -> Entry {
        guard let entry = self[name] else {
            throw CheckpointError(.missingTensor, file: file, tensor: name, "is not in the checkpoint")
        }
        if let shape, shape != entry.shape {
            throw CheckpointError(.mismatch, file: file, tensor: name, "has shape \(entry.shape), expected \(shape)")
        }
        return entry
    }

    // MARK: Writing

    /// The file's bytes. Throws `.invalidTensors` for duplicate or reserved names, negative
    /// dimensions or a value count that does not match the shape.
    public func encoded(file: String = "<memory>") throws -> [UInt8] {
        var names = Set<String>()
        var header = "{"
        if !metadata.isEmpty {
            header += HeaderJSON.quoted(SafeTensors.metadataKey) + ":{"
            header += metadata.sorted { $0.key < $1.key }
                .map { HeaderJSON.quoted($0.key) + ":" + HeaderJSON.quoted($0.value) }
                .joined(separator: ",")
            header += "}"
        }
        var offset = 0
        for (i, t) in tensors.enumerated() {
            guard t.name != SafeTensors.metadataKey else {
                throw CheckpointError(.invalidTensors, file: file, tensor: t.name, "name is reserved for metadata")
            }
            guard names.insert(t.name).inserted else {
                throw CheckpointError(.invalidTensors, file: file, tensor: t.name, "appears twice")
            }
            guard t.shape.allSatisfy({ $0 >= 0 }), t.shape.reduce(1, *) == t.values.count else {
                throw CheckpointError(.invalidTensors, file: file, tensor: t.name,
                                      "has \(t.values.count) values for shape \(t.shape)")
            }
            let size = t.values.count * TensorValues.elementSize(dtype: t.values.dtype)!
            if i > 0 || !metadata.isEmpty { header += "," }
            header += HeaderJSON.quoted(t.name) + ":{\"dtype\":\"\(t.values.dtype)\",\"shape\":["
                + t.shape.map(String.init).joined(separator: ",")
                + "],\"data_offsets\":[\(offset),\(offset + size)]}"
            offset += size
        }
        header += "}"
        var headerBytes = Array(header.utf8)
        // Pad so that the data section starts 8-byte aligned (what the reference writer does).
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }

        var out = [UInt8]()
        out.reserveCapacity(8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: headerBytes)
        for t in tensors {
            switch t.values {
            case .float32(let v):
                #if _endian(little)
                v.withUnsafeBytes { out.append(contentsOf: $0) }
                #else
                for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
                #endif
            case .int64(let v):
                #if _endian(little)
                v.withUnsafeBytes { out.append(contentsOf: $0) }
                #else
                for x in v { withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) } }
                #endif
            }
        }
        return out
    }

    /// Writes the file atomically: a temporary file in the same directory, fsync, rename over
    /// `path`, fsync of the directory. A crash or error at any point leaves the previous file
    /// at `path` (if any) intact, and never a partial one.
    public func write(to path: String) throws {
        try write(to: path, calls: .posix)
    }

    func write(to path: String, calls: SystemCalls) throws {
        let bytes = try encoded(file: path)
        do {
            try FileSystem.writeAtomically(bytes, to: path, calls: calls)
        } catch let error as SystemCallError {
            throw CheckpointError(.writeFailed, file: path, "checkpoint not written: \(error.message)")
        }
    }

    // MARK: Reading

    /// Reads and validates a safetensors file. Malformed input throws a `CheckpointError`
    /// naming the file and the tensor; it never traps. Only regular files are read, and the
    /// header length is checked against the file's size before the rest is read.
    public static func read(from path: String) throws -> SafeTensors {
        func refused(_ r: FileRefusal) -> CheckpointError {
            if r.detail.hasPrefix("is a directory") {
                return CheckpointError(.unreadable, file: path,
                                       "is a directory with no checkpoint in it (no best.safetensors or last.safetensors)")
            }
            return CheckpointError(r.isMissing ? .notFound : .unreadable, file: path, r.detail)
        }
        do {
            let file = try RegularFile(path, limit: maxFileSize)
            guard file.size >= 8 else {
                throw CheckpointError(.tooShort, file: path, "file is \(file.size) bytes, shorter than the 8-byte header length")
            }
            let prefix = try file.read(8)
            var length: UInt64 = 0
            for i in 0..<8 { length |= UInt64(prefix[i]) << (8 * UInt64(i)) }
            guard length <= UInt64(maxHeaderLength) else {
                throw CheckpointError(.badHeaderLength, file: path,
                                      "header length \(length) is absurd (limit \(maxHeaderLength)); not a safetensors file?")
            }
            guard Int(length) <= file.size - 8 else {
                throw CheckpointError(.badHeaderLength, file: path,
                                      "header length \(length) exceeds the \(file.size - 8) bytes after the length field (file truncated?)")
            }
            return try decode(prefix + file.read(file.remaining), file: path)
        } catch let r as FileRefusal {
            throw refused(r)
        }
    }

    /// Files above this are refused before reading (far above any model this trainer builds).
    public static let maxFileSize = 1 << 36

    /// Parses the bytes of a safetensors file; `file` names it in errors.
    public static func decode(_ bytes: [UInt8], file: String = "<memory>") throws -> SafeTensors {
        try bytes.withUnsafeBufferPointer { try decode($0, file: file) }
    }

    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, file: String) throws -> SafeTensors {
        guard bytes.count >= 8 else {
            throw CheckpointError(.tooShort, file: file,
                                  "file is \(bytes.count) bytes, shorter than the 8-byte header length")
        }
        var length64: UInt64 = 0
        for i in 0..<8 { length64 |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard length64 <= UInt64(maxHeaderLength) else {
            throw CheckpointError(.badHeaderLength, file: file,
                                  "header length \(length64) is absurd (limit \(maxHeaderLength)); not a safetensors file?")
        }
        let headerLength = Int(length64)
        guard headerLength <= bytes.count - 8 else {
            throw CheckpointError(.badHeaderLength, file: file,
                                  "header length \(headerLength) exceeds the \(bytes.count - 8) bytes after the length field (file truncated?)")
        }
        let root: HeaderJSON.Value
        do {
            root = try HeaderJSON.Parser.parse(UnsafeBufferPointer(rebasing: bytes[8..<(8 + headerLength)]))
        } catch let error as HeaderJSON.ParseError {
            throw CheckpointError(.badHeader, file: file,
                                  "header is not valid JSON: \(error.message) at byte \(8 + error.offset)")
        }
        guard case .object(let members) = root else {
            throw CheckpointError(.badHeader, file: file, "header is \(root.typeName), expected a JSON object")
        }

        let dataStart = 8 + headerLength
        let dataLength = bytes.count - dataStart
        var metadata: [String: String] = [:]
        // (name, dtype, shape, begin, end)
        var entries: [(name: String, dtype: String, shape: [Int], begin: Int, end: Int)] = []
        for (name, value) in members {
            if name == metadataKey {
                guard case .object(let pairs) = value else {
                    throw CheckpointError(.badMetadata, file: file, "__metadata__ is \(value.typeName), expected an object of strings")
                }
                for (key, v) in pairs {
                    guard case .string(let s) = v else {
                        throw CheckpointError(.badMetadata, file: file,
                                              "__metadata__ value for key \(HeaderJSON.quoted(key)) is \(v.typeName), expected a string")
                    }
                    metadata[key] = s
                }
                continue
            }
            func bad(_ reason: CheckpointError.Reason, _ detail: String) -> CheckpointError {
                CheckpointError(reason, file: file, tensor: name, detail)
            }
            guard case .object(let fields) = value else {
                throw bad(.badEntry, "entry is \(value.typeName), expected an object with dtype, shape, data_offsets")
            }
            func field(_ key: String) throws -> HeaderJSON.Value {
                guard let f = fields.first(where: { $0.key == key }) else { throw bad(.badEntry, "entry has no \"\(key)\"") }
                return f.value
            }
            guard case .string(let dtype) = try field("dtype") else {
                throw bad(.badEntry, "\"dtype\" is \(try field("dtype").typeName), expected a string")
            }
            guard let elementSize = TensorValues.elementSize(dtype: dtype) else {
                throw bad(.unsupportedDtype, "dtype \(HeaderJSON.quoted(dtype)) is not supported (F32, I64)")
            }
            guard case .array(let dims) = try field("shape") else {
                throw bad(.badEntry, "\"shape\" is \(try field("shape").typeName), expected an array of dimensions")
            }
            var shape: [Int] = []
            var elements = 1
            for d in dims {
                guard let n = d.nonNegativeInteger else {
                    let text: String
                    if case .number(let t) = d { text = t } else { text = d.typeName }
                    throw bad(.badEntry, "shape has dimension \(text), expected a non-negative integer")
                }
                let (product, overflow) = elements.multipliedReportingOverflow(by: n)
                guard !overflow else { throw bad(.badEntry, "shape \(dims.map { $0.nonNegativeInteger ?? -1 }) overflows the element count") }
                elements = product
                shape.append(n)
            }
            let (byteCount, overflow) = elements.multipliedReportingOverflow(by: elementSize)
            guard !overflow else { throw bad(.badEntry, "shape \(shape) of \(dtype) overflows the byte count") }
            guard case .array(let offsets) = try field("data_offsets"), offsets.count == 2,
                  let begin = offsets[0].nonNegativeInteger, let end = offsets[1].nonNegativeInteger else {
                throw bad(.badEntry, "\"data_offsets\" must be [begin, end], two non-negative integers")
            }
            guard begin <= end else {
                throw bad(.badOffsets, "data_offsets [\(begin), \(end)] end before they begin")
            }
            guard end <= dataLength else {
                throw bad(.badOffsets, "data_offsets [\(begin), \(end)] run past the \(dataLength)-byte data section")
            }
            guard end - begin == byteCount else {
                throw bad(.badOffsets, "data_offsets [\(begin), \(end)] hold \(end - begin) bytes but shape \(shape) of \(dtype) needs \(byteCount)")
            }
            entries.append((name, dtype, shape, begin, end))
        }

        // Tensors must tile the data section exactly: no overlap, no gap, nothing left over.
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var expected = 0
        for (k, e) in entries.enumerated() {
            if e.begin < expected {
                let previous = entries[k - 1]
                throw CheckpointError(.badOffsets, file: file, tensor: e.name,
                                      "data_offsets [\(e.begin), \(e.end)] overlap those of tensor \(HeaderJSON.quoted(previous.name)) [\(previous.begin), \(previous.end)]")
            }
            if e.begin > expected {
                throw CheckpointError(.badOffsets, file: file, tensor: e.name,
                                      "data_offsets [\(e.begin), \(e.end)] leave bytes \(expected)..<\(e.begin) of the data section unused")
            }
            expected = e.end
        }
        guard expected == dataLength else {
            throw CheckpointError(.badOffsets, file: file,
                                  "tensors cover \(expected) bytes but the data section has \(dataLength) (trailing or missing data)")
        }

        var tensors: [Entry] = []
        tensors.reserveCapacity(entries.count)
        let data = bytes.baseAddress.map { UnsafeRawPointer($0 + dataStart) }
        for e in entries {
            let count = (e.end - e.begin) / TensorValues.elementSize(dtype: e.dtype)!
            let values: TensorValues
            switch e.dtype {
            case "F32":
                var v = [Float](repeating: 0, count: count)
                v.withUnsafeMutableBytes { dst in
                    if count > 0 { dst.baseAddress!.copyMemory(from: data! + e.begin, byteCount: dst.count) }
                }
                #if _endian(big)
                for i in v.indices { v[i] = Float(bitPattern: UInt32(littleEndian: v[i].bitPattern)) }
                #endif
                values = .float32(v)
            default:   // "I64"
                var v = [Int64](repeating: 0, count: count)
                v.withUnsafeMutableBytes { dst in
                    if count > 0 { dst.baseAddress!.copyMemory(from: data! + e.begin, byteCount: dst.count) }
                }
                #if _endian(big)
                for i in v.indices { v[i] = Int64(littleEndian: v[i]) }
                #endif
                values = .int64(v)
            }
            tensors.append(Entry(name: e.name, shape: e.shape, values: values))
        }
        return SafeTensors(tensors: tensors, metadata: metadata)
    }
}
