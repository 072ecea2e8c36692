import ArgumentParser
import Trainer

/// `--input` of `prune` and `bench train`: a dataset's name (cifar: 3x32x32; fashion, mnist:
/// 1x28x28) or any CxHxW, the same words in both commands.
func parseInputShape(_ text: String) throws -> ImageShape {
    switch text {
    case "cifar", "cifar10", "cifar100": return .cifar
    case "fashion", "fashion-mnist", "mnist": return .fashionMNIST
    default: break
    }
    let parts = text.split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
    guard parts.count == 3, parts.allSatisfy({ ($0 ?? 0) > 0 && ($0 ?? 0) <= 4096 }) else {
        throw ValidationError("--input must be cifar (3x32x32), fashion or mnist (1x28x28), or CxHxW with sides up to 4096, not '\(text)'")
    }
    return ImageShape(channels: parts[0]!, height: parts[1]!, width: parts[2]!)
}

let inputShapeHelp: ArgumentHelp = "cifar (3x32x32), fashion or mnist (1x28x28), or any CxHxW."
