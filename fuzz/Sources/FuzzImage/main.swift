import FuzzSupport
import Trainer

/// A PNG or JPEG file (libpng, TurboJPEG) decoded to grey and to RGB, then resized.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImage(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let raw = bytes(data, size)
    _ = try? ImageDecoding.isColour(raw, file: "fuzz-image")
    for channels in [1, 3] {
        guard let image = try? ImageDecoding.decode(raw, file: "fuzz-image", channels: channels) else { continue }
        precondition(image.pixels.count == image.width * image.height * channels)
        // Small images only: a large one is valid and just slow to resize.
        if image.width * image.height <= 1 << 16 {
            for filter in ResizeFilter.allCases { _ = filter.resize(image, width: 7, height: 5) }
        }
    }
    return 0
}

runLibFuzzer { fuzzImage($0, $1) }
