import FuzzSupport
import Trainer

/// A CIFAR-10 binary batch file, and the dataset built from it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCIFAR10(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = bytes(data, size)
    var pixels: [UInt8] = [], labels: [Int32] = []
    guard (try? CIFAR10.parseBatch(bytes, file: "fuzz.bin", pixels: &pixels, labels: &labels)) != nil else { return 0 }
    let set = ImageDataset(name: "fuzz", channels: CIFAR10.channels, height: CIFAR10.height, width: CIFAR10.width,
                           pixels: pixels, labels: labels, classes: CIFAR10.classes, classNames: CIFAR10.defaultClassNames)
    _ = set.channelStatistics()
    return 0
}

runLibFuzzer { fuzzCIFAR10($0, $1) }
