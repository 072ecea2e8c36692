/// A checkpoint that cannot be read or written: names the file and, where it applies, the tensor.
///
///     run/ckpt.safetensors: tensor "layer1.0.bn1.weight": data_offsets [0, 60] hold 60 bytes but shape [16] of F32 needs 64
public struct CheckpointError: Error, Equatable, CustomStringConvertible {
    public enum Reason: Equatable, Sendable {
        /// The file does not exist.
        case notFound
        /// Reading failed (permissions, I/O error).
        case unreadable
        /// Writing failed; the previous file at the path is unchanged.
        case writeFailed
        /// Shorter than the 8-byte header length.
        case tooShort
        /// The header length is larger than the file or than any sane header.
        case badHeaderLength
        /// The header is not a JSON object.
        case badHeader
        /// A tensor entry is not an object, lacks a field, or has a malformed shape or offsets.
        case badEntry
        /// A dtype this reader does not convert (supported: F32, I64).
        case unsupportedDtype
        /// Data offsets out of range, overlapping, leaving gaps, or disagreeing with shape x dtype.
        case badOffsets
        /// `__metadata__` is not an object of strings.
        case badMetadata
        /// Tensors given to the writer are inconsistent (duplicate or reserved name, count != shape).
        case invalidTensors
        /// A tensor asked for is absent.
        case missingTensor
        /// A tensor asked for has another dtype or shape than expected.
        case mismatch
    }

    public let reason: Reason
    public let file: String
    /// The tensor at fault, when there is one.
    public let tensor: String?
    public let detail: String

    public init(_ reason: Reason, file: String, tensor: String? = nil, _ detail: String) {
        self.reason = reason
        self.file = file
        self.tensor = tensor
        self.detail = detail
    }

    public var description: String {
        if let tensor { return "\(file): tensor \(HeaderJSON.quoted(tensor)): \(detail)" }
        return "\(file): \(detail)"
    }
}
