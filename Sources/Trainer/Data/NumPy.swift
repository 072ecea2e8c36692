/// NumPy arrays: `.npy` files (format versions 1-3) and `.npz` archives of them.
///
/// A dataset is four arrays named as Keras' `mnist.npz` names them: `x_train`, `y_train`,
/// `x_test`, `y_test`, either members of one `.npz` (stored or compressed, `np.savez` /
/// `np.savez_compressed`) or `.npy` files in one directory.
/// - images `x_*`: uint8 (N, H, W) (one channel), (N, H, W, C) or (N, C, H, W) with C 1 or 3
///   (NHWC when the last axis is 1 or 3, else NCHW); or float32 of the same shapes holding
///   pixel/255, i.e. values in [0, 1], stored as round(255 x) (anything else is refused).
/// - labels `y_*`: (N) or (N, 1) integers of any width, 0 <= label < 65,536; the number of
///   classes is the largest label (train and test) plus one.
public enum NumPy {
    /// A parsed `.npy`: dtype descriptor (`<f4`, `|u1`, ...), shape and the raw C-order data.
    public struct Array: Equatable {
        public var descr: String
        public var shape: [Int]
        public var data: ArraySlice<UInt8>
        public var count: Int { shape.reduce(1, *) }
    }

    public static let memberNames = ["x_train", "y_train", "x_test", "y_test"]

    /// Parses the bytes of a `.npy` file; `file` names it in errors (an `.npz` member as
    /// "archive.npz:x_train.npy").
    public static func parse(_ b: [UInt8], file: String) throws -> Array {
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]   // \x93NUMPY
        guard b.count >= 10, Swift.Array(b[0..<6]) == magic else {
            throw DatasetError(.badMagic, file: file, offset: 0, "is not a NumPy .npy array (no \\x93NUMPY magic)")
        }
        let major = b[6]
        let headerLength: Int, start: Int
        switch major {
        case 1: headerLength = Int(b[8]) | Int(b[9]) << 8; start = 10
        case 2, 3:
            guard b.count >= 12 else { throw DatasetError(.truncated, file: file, offset: b.count, "ends inside the .npy header") }
            headerLength = Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24; start = 12
        default:
            throw DatasetError(.badHeader, file: file, offset: 6, ".npy format version \(major) is not supported (1, 2 or 3)")
        }
        guard headerLength <= b.count - start else {
            throw DatasetError(.truncated, file: file, offset: b.count, "ends inside the .npy header (\(headerLength) bytes declared)")
        }
        let header = String(decoding: b[start..<(start + headerLength)], as: UTF8.self)
        guard let descr = value(of: "descr", in: header).flatMap(quoted) else {
            throw DatasetError(.badHeader, file: file, offset: start, ".npy header has no 'descr': \(header.prefix(80))")
        }
        guard let order = value(of: "fortran_order", in: header), order.hasPrefix("False") || order.hasPrefix("True") else {
            throw DatasetError(.badHeader, file: file, offset: start, ".npy header has no 'fortran_order'")
        }
        guard order.hasPrefix("False") else {
            throw DatasetError(.badHeader, file: file, offset: start, "Fortran-ordered arrays are not supported (save with np.ascontiguousarray)")
        }
        guard let shapeText = value(of: "shape", in: header), shapeText.hasPrefix("("), let close = shapeText.firstIndex(of: ")") else {
            throw DatasetError(.badHeader, file: file, offset: start, ".npy header has no 'shape' tuple")
        }
        var shape: [Int] = []
        for part in shapeText[shapeText.index(after: shapeText.startIndex)..<close].split(separator: ",") {
            let t = part.trimmingCharacters(in: " L")
            if t.isEmpty { continue }
            guard let n = Int(t), n >= 0, n <= 1 << 31 else {
                throw DatasetError(.badHeader, file: file, offset: start, ".npy shape entry '\(t)' is not a size")
            }
            shape.append(n)
        }
        guard let size = itemSize(descr) else {
            throw DatasetError(.badHeader, file: file, offset: start, "dtype '\(descr)' is not supported (uint8, float32 or little-endian integers)")
        }
        let (count, overflow) = shape.reduce((1, false)) { acc, n in
            let (p, o) = acc.0.multipliedReportingOverflow(by: n)
            return (p, acc.1 || o || p > DatasetError.maxFileSize)
        }
        let dataStart = start + headerLength
        guard !overflow else { throw DatasetError(.badHeader, file: file, offset: start, "shape \(shape) is too large") }
        let expected = count * size
        guard b.count - dataStart >= expected else {
            throw DatasetError(.truncated, file: file, offset: b.count,
                               "holds \(b.count - dataStart) data bytes; shape \(shape) of \(descr) needs \(expected)")
        }
        guard b.count - dataStart == expected else {
            throw DatasetError(.trailingData, file: file, offset: dataStart + expected,
                               "\(b.count - dataStart - expected) bytes after the \(shape) array the header declares")
        }
        return Array(descr: descr, shape: shape, data: b[dataStart...])
    }

    /// Bytes per element of the dtypes accepted, nil for others.
    static func itemSize(_ descr: String) -> Int? {
        switch descr {
        case "|u1", "<u1", "|i1", "<i1", "|b1": return 1
        case "<i2", "<u2": return 2
        case "<i4", "<u4", "<f4": return 4
        case "<i8", "<u8": return 8
        default: return nil
        }
    }

    /// The text after `'key':` in a header dict, up to the end.
    static func value(of key: String, in header: String) -> Substring? {
        guard let range = header.range(of: "'\(key)'") else { return nil }
        var rest = header[range.upperBound...].drop { $0 == " " }
        guard rest.first == ":" else { return nil }
        rest = rest.dropFirst().drop { $0 == " " }
        return rest
    }

    static func quoted(_ s: Substring) -> String? {
        guard let q = s.first, q == "'" || q == "\"" else { return nil }
        let body = s.dropFirst()
        guard let end = body.firstIndex(of: q) else { return nil }
        return String(body[..<end])
    }

    /// (C, H, W) pixels of an image array as bytes.
    public static func images(_ a: Array, file: String) throws -> (count: Int, channels: Int, height: Int, width: Int, pixels: [UInt8]) {
        let n: Int, c: Int, h: Int, w: Int, nhwc: Bool
        switch a.shape.count {
        case 3: (n, c, h, w, nhwc) = (a.shape[0], 1, a.shape[1], a.shape[2], false)
        case 4 where a.shape[3] == 1 || a.shape[3] == 3: (n, h, w, c, nhwc) = (a.shape[0], a.shape[1], a.shape[2], a.shape[3], true)
        case 4 where a.shape[1] == 1 || a.shape[1] == 3: (n, c, h, w, nhwc) = (a.shape[0], a.shape[1], a.shape[2], a.shape[3], false)
        default:
            throw DatasetError(.badHeader, file: file, offset: 0,
                               "image array has shape \(a.shape); expected (N, H, W), (N, H, W, C) or (N, C, H, W) with C 1 or 3")
        }
        guard n > 0, h > 0, w > 0, h <= 1 << 14, w <= 1 << 14 else {
            throw DatasetError(.badHeader, file: file, offset: 0, "image array has shape \(a.shape): no images, or a side of 0 or above 16384")
        }
        var bytes = [UInt8](repeating: 0, count: a.count)
        let base = a.data.startIndex
        switch a.descr {
        case "|u1", "<u1":
            a.data.withUnsafeBufferPointer { src in
                bytes.withUnsafeMutableBufferPointer { dst in _ = dst.initialize(from: src) }
            }
        case "<f4":
            for i in 0..<a.count {
                let o = base + 4 * i
                let bits = UInt32(a.data[o]) | UInt32(a.data[o + 1]) << 8 | UInt32(a.data[o + 2]) << 16 | UInt32(a.data[o + 3]) << 24
                let v = Float(bitPattern: bits)
                guard v >= 0, v <= 1 else {
                    throw DatasetError(.badHeader, file: file, offset: o - base,
                                       "float32 element \(i) is \(v); float images must hold pixel/255, in [0, 1]")
                }
                bytes[i] = UInt8((v * 255).rounded())
            }
        default:
            throw DatasetError(.badHeader, file: file, offset: 0, "image dtype '\(a.descr)' is not supported (uint8, or float32 in [0, 1])")
        }
        guard nhwc && c > 1 else { return (n, c, h, w, bytes) }
        // NHWC -> NCHW.
        var chw = [UInt8](repeating: 0, count: bytes.count)
        let plane = h * w
        for image in 0..<n {
            let o = image * plane * c
            for p in 0..<plane { for ch in 0..<c { chw[o + ch * plane + p] = bytes[o + p * c + ch] } }
        }
        return (n, c, h, w, chw)
    }

    /// Class indices of a label array.
    public static func labels(_ a: Array, file: String) throws -> [Int32] {
        guard a.shape.count == 1 || (a.shape.count == 2 && a.shape[1] == 1) else {
            throw DatasetError(.badHeader, file: file, offset: 0, "label array has shape \(a.shape); expected (N) or (N, 1)")
        }
        guard let size = itemSize(a.descr), !a.descr.hasSuffix("f4"), a.descr != "|b1" else {
            throw DatasetError(.badHeader, file: file, offset: 0, "label dtype '\(a.descr)' is not an integer type")
        }
        let signed = a.descr.contains("i")
        var labels = [Int32](repeating: 0, count: a.count)
        let base = a.data.startIndex
        for i in 0..<a.count {
            var raw: UInt64 = 0
            for k in 0..<size { raw |= UInt64(a.data[base + i * size + k]) << (8 * UInt64(k)) }
            let negative = signed && (raw >> (8 * UInt64(size) - 1)) & 1 == 1
            guard !negative, raw < 65536 else {
                throw DatasetError(.badLabel, file: file, offset: i * size, "label \(i) is \(negative ? "negative" : "\(raw)"); labels must be in 0..<65536")
            }
            labels[i] = Int32(raw)
        }
        return labels
    }

    /// The four arrays of a dataset: `path` is an `.npz` or a directory of `.npy` files.
    public static func load(path: String) throws -> (train: ImageDataset, test: ImageDataset) {
        var arrays: [String: (Array, String)] = [:]
        if FileSystem.kind(of: path) == .directory {
            for name in memberNames {
                let file = FileSystem.join(path, name + ".npy")
                let bytes: [UInt8]
                do { bytes = try FileSystem.readRegularFile(file, limit: DatasetError.maxFileSize) } catch {
                    throw DatasetError(reading: file, error)
                }
                arrays[name] = (try parse(bytes, file: file), file)
            }
        } else {
            let bytes: [UInt8]
            do { bytes = try FileSystem.readRegularFile(path, limit: DatasetError.maxFileSize) } catch {
                throw DatasetError(reading: path, error)
            }
            arrays = try archiveArrays(bytes, file: path)
        }
        return try dataset(arrays, name: FileSystem.split(path).base)
    }

    /// The arrays `x_train` ... `y_test` in the `.npz` contents `bytes`.
    public static func archiveArrays(_ bytes: [UInt8], file: String) throws -> [String: (Array, String)] {
        let members = try Zip.members(bytes, file: file)
        var arrays: [String: (Array, String)] = [:]
        for name in memberNames {
            guard let member = members.first(where: { $0.name == name + ".npy" }) else {
                throw DatasetError(.notFound, file: file, "has no member \(name).npy (it holds: \(members.map(\.name).joined(separator: ", ")); "
                                   + "expected x_train, y_train, x_test, y_test)")
            }
            let where_ = "\(file):\(member.name)"
            arrays[name] = (try parse(try Zip.contents(of: member, in: bytes, file: file), file: where_), where_)
        }
        return arrays
    }

    /// Builds the train and test sets from the four arrays, checking they agree.
    static func dataset(_ arrays: [String: (Array, String)], name: String) throws -> (train: ImageDataset, test: ImageDataset) {
        func part(_ p: String) throws -> (Int, Int, Int, Int, [UInt8], [Int32], String) {
            let (x, xFile) = arrays["x_" + p]!, (y, yFile) = arrays["y_" + p]!
            let images = try images(x, file: xFile)
            let labels = try labels(y, file: yFile)
            guard labels.count == images.count else {
                throw DatasetError(.mismatch, file: yFile, "holds \(labels.count) labels but \(xFile) holds \(images.count) images")
            }
            return (images.count, images.channels, images.height, images.width, images.pixels, labels, xFile)
        }
        let train = try part("train"), test = try part("test")
        guard (train.1, train.2, train.3) == (test.1, test.2, test.3) else {
            throw DatasetError(.mismatch, file: test.6, "images are \(test.1)x\(test.2)x\(test.3) but the training images are \(train.1)x\(train.2)x\(train.3)")
        }
        let classes = Int((train.5 + test.5).max() ?? 0) + 1
        func make(_ p: (Int, Int, Int, Int, [UInt8], [Int32], String), _ part: String) -> ImageDataset {
            ImageDataset(name: "\(name)/\(part)", channels: p.1, height: p.2, width: p.3, pixels: p.4, labels: p.5, classes: classes)
        }
        return (make(train, "train"), make(test, "test"))
    }
}
