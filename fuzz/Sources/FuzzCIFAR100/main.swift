import FuzzSupport
import Trainer

/// A CIFAR-100 binary file, read with fine and with coarse labels.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCIFAR100(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let raw = bytes(data, size)
    for labels in CIFAR100.Labels.allCases {
        var pixels: [UInt8] = [], classes: [Int32] = []
        if (try? CIFAR100.parse(raw, file: "fuzz-cifar100", labels: labels, pixels: &pixels, classes: &classes)) != nil {
            precondition(pixels.count == classes.count * 3072 && classes.allSatisfy { $0 >= 0 && Int($0) < labels.classes })
        }
    }
    return 0
}

runLibFuzzer { fuzzCIFAR100($0, $1) }
