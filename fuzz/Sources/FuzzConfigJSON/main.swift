import FuzzSupport
import Trainer

/// A run configuration file (config.json of train and grow runs, `--config`): decoding, then
/// the validator, then building the model it describes when the validator lets it through.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfigJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = bytes(data, size)
    let facts = DataFacts(trainCount: 450, validationCount: 50, testCount: 200,
                          imageShape: ImageShape(channels: 3, height: 32, width: 32), classes: 10)
    if let c = try? ConfigFile.decode(TrainConfig.self, from: bytes, file: "config.json") {
        if (try? ConfigValidation.check(c, data: facts, memoryLimit: 4e9, source: .file("config.json"))) != nil {
            _ = try? Model(spec: c.model).cost
        }
    }
    if let g = try? ConfigFile.decode(GrowConfig.self, from: bytes, file: "config.json") {
        _ = try? ConfigValidation.check(g, data: facts, memoryLimit: 4e9, source: .file("config.json"))
    }
    return 0
}

runLibFuzzer { fuzzConfigJSON($0, $1) }
