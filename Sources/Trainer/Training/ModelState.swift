import GPUTensor
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Moving a model's tensors in and out of safetensors files, by PyTorch name.
public enum ModelState {
    /// Appends the model's state dict (parameters and buffers, PyTorch names) and, for each batch
    /// norm, an I64 `num_batches_tracked` so that PyTorch's strict `load_state_dict` accepts it.
    public static func append(_ model: Model, to file: inout SafeTensors, batchesTracked: Int) throws {
        guard let backend = model.backend else { preconditionFailure("ModelState.append before prepare") }
        for (name, tensor) in model.stateDict {
            file.append(name, shape: tensor.shape, floats: try backend.download(tensor))
            if name.hasSuffix(".running_var") {
                let prefix = String(name.dropLast("running_var".count))
                file.append(prefix + "num_batches_tracked", shape: [], int64s: [Int64(batchesTracked)])
            }
        }
    }

    /// Writes a model alone (no optimizer state) with its config, loadable by `strata eval` and reuse.
    public static func save(_ model: Model, config: TrainConfig, normalization: (mean: [Float], std: [Float]),
                            epoch: Int, to path: String) throws {
        var file = SafeTensors()
        try append(model, to: &file, batchesTracked: 0)
        let info = CheckpointInfo(epoch: epoch, optimizerSteps: 0, dropoutCounter: model.dropoutCounter, seed: config.seed,
                                  normalizationMean: normalization.mean, normalizationStd: normalization.std,
                                  flops: FlopSnapshot(byKey: [:]))
        file.metadata = ["strata": try jsonString(info), "config": try jsonString(config), "model": try jsonString(config.model)]
        try file.write(to: path)
    }

    /// Loads every tensor of the model's state dict from `file`; a missing tensor or a shape that
    /// differs is an error naming it. Tensors the model does not have are ignored.
    /// With `only`, loads just those names; all shapes are checked before anything is written.
    public static func load(_ model: Model, from file: SafeTensors, path: String,
                            only names: Set<String>? = nil) throws {
        guard let backend = model.backend else { preconditionFailure("ModelState.load before prepare") }
        let wanted = model.stateDict.filter { names?.contains($0.name) ?? true }
        for (name, tensor) in wanted {
            guard let entry = file[name] else {
                throw CheckpointError(.missingTensor, file: path, tensor: name,
                                      "the model needs \(name) \(tensor.shape), the checkpoint has no such tensor")
            }
            guard entry.shape == tensor.shape else {
                throw CheckpointError(.mismatch, file: path, tensor: name,
                                      "\(name) has shape \(entry.shape) in the checkpoint, the model needs \(tensor.shape)")
            }
        }
        for (name, tensor) in wanted {
            backend.upload(try file.floats(name, shape: tensor.shape, file: path), to: tensor)
        }
    }
}

/// JSON text of a Codable value, for safetensors metadata (whose values are strings).
func jsonString<T: Encodable>(_ value: T) throws -> String {
    let enc = RunDirectory.encoder   // non-finite numbers as strings (see there)
    enc.outputFormatting = [.sortedKeys]
    return String(decoding: try enc.encode(value), as: UTF8.self)
}

func decodeJSON<T: Decodable>(_ type: T.Type, _ text: String?, file: String, key: String) throws -> T {
    guard let text else {
        throw CheckpointError(.badMetadata, file: file, tensor: nil, "metadata has no '\(key)' entry")
    }
    do {
        return try RunDirectory.decoder.decode(type, from: Data(text.utf8))
    } catch {
        let detail = (error as? DecodingError).map { describe($0) } ?? "\(error)"
        throw CheckpointError(.badMetadata, file: file, tensor: nil, "metadata \(key): \(detail)")
    }
}
