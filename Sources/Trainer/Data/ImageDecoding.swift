import CPNG
import CTurboJPEG

/// A decoded image: `channels` (1 grey, 3 RGB) interleaved per pixel, rows top to bottom.
public struct DecodedImage: Equatable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [UInt8]
}

/// PNG (libpng's simplified API) and JPEG (TurboJPEG) decoding from memory. Both libraries
/// report errors by return value, never by longjmp through Swift frames.
public enum ImageDecoding {
    /// The largest side accepted, checked from the header before any pixel buffer is allocated.
    public static let maxSide = 1 << 14
    /// The most pixels accepted (a 33-megapixel photo), so a forged header cannot make us
    /// allocate gigabytes.
    public static let maxPixels = 1 << 25

    public enum Format { case png, jpeg }

    /// The format by magic number, nil for anything else.
    public static func format(of b: [UInt8]) -> Format? {
        if b.count >= 8, b[0] == 0x89, b[1] == 0x50, b[2] == 0x4E, b[3] == 0x47 { return .png }
        if b.count >= 3, b[0] == 0xFF, b[1] == 0xD8, b[2] == 0xFF { return .jpeg }
        return nil
    }

    /// Whether the image in `b` has colour (decides the channel count of a folder).
    public static func isColour(_ b: [UInt8], file: String) throws -> Bool {
        switch format(of: b) {
        case .png?:
            var image = png_image()
            image.version = UInt32(PNG_IMAGE_VERSION)
            defer { png_image_free(&image) }
            guard png_image_begin_read_from_memory(&image, b, b.count) != 0 else { throw pngError(&image, file) }
            return image.format & UInt32(PNG_FORMAT_FLAG_COLOR) != 0
        case .jpeg?:
            let (_, _, colourspace) = try jpegHeader(b, file: file)
            return colourspace != Int32(TJCS_GRAY.rawValue)
        case nil:
            throw DatasetError(.badMagic, file: file, offset: 0, "is neither a PNG nor a JPEG image")
        }
    }

    /// Decodes `b` (the contents of `file`) to `channels` (1 or 3), converting colour as needed.
    public static func decode(_ b: [UInt8], file: String, channels: Int) throws -> DecodedImage {
        switch format(of: b) {
        case .png?: return try decodePNG(b, file: file, channels: channels)
        case .jpeg?: return try decodeJPEG(b, file: file, channels: channels)
        case nil: throw DatasetError(.badMagic, file: file, offset: 0, "is neither a PNG nor a JPEG image")
        }
    }

    static func decodePNG(_ b: [UInt8], file: String, channels: Int) throws -> DecodedImage {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }
        guard png_image_begin_read_from_memory(&image, b, b.count) != 0 else { throw pngError(&image, file) }
        let width = Int(image.width), height = Int(image.height)
        guard width > 0, height > 0, width <= maxSide, height <= maxSide, width * height <= maxPixels else {
            throw DatasetError(.badHeader, file: file, offset: 16, "PNG is \(width)x\(height); sides must be 1...\(maxSide), at most \(maxPixels) pixels")
        }
        image.format = channels == 1 ? 0 : UInt32(PNG_FORMAT_FLAG_COLOR)   // PNG_FORMAT_GRAY, PNG_FORMAT_RGB
        var pixels = [UInt8](repeating: 0, count: width * height * channels)
        // Transparent pixels are composited on black (the background argument is nil).
        guard png_image_finish_read(&image, nil, &pixels, 0, nil) != 0 else { throw pngError(&image, file) }
        return DecodedImage(width: width, height: height, channels: channels, pixels: pixels)
    }

    static func pngError(_ image: inout png_image, _ file: String) -> DatasetError {
        let message = withUnsafeBytes(of: image.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return DatasetError(.badHeader, file: file, "cannot decode PNG: \(message.isEmpty ? "libpng error" : message)")
    }

    static func jpegHeader(_ b: [UInt8], file: String) throws -> (width: Int, height: Int, colourspace: Int32) {
        guard let handle = tjInitDecompress() else { throw DatasetError(.unreadable, file: file, "TurboJPEG failed to initialise") }
        defer { tjDestroy(handle) }
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colourspace: Int32 = 0
        var bytes = b
        guard tjDecompressHeader3(handle, &bytes, UInt(b.count), &width, &height, &subsampling, &colourspace) == 0 else {
            throw DatasetError(.badHeader, file: file, "cannot decode JPEG: \(String(cString: tjGetErrorStr2(handle)))")
        }
        return (Int(width), Int(height), colourspace)
    }

    static func decodeJPEG(_ b: [UInt8], file: String, channels: Int) throws -> DecodedImage {
        let (width, height, _) = try jpegHeader(b, file: file)
        guard width > 0, height > 0, width <= maxSide, height <= maxSide, width * height <= maxPixels else {
            throw DatasetError(.badHeader, file: file, "JPEG is \(width)x\(height); sides must be 1...\(maxSide), at most \(maxPixels) pixels")
        }
        guard let handle = tjInitDecompress() else { throw DatasetError(.unreadable, file: file, "TurboJPEG failed to initialise") }
        defer { tjDestroy(handle) }
        var pixels = [UInt8](repeating: 0, count: width * height * channels)
        var bytes = b
        let format = channels == 1 ? TJPF_GRAY : TJPF_RGB
        // Flags 0: accurate defaults; a truncated file is an error, not a grey bottom half.
        let status = tjDecompress2(handle, &bytes, UInt(b.count), &pixels, Int32(width), 0, Int32(height),
                                   Int32(format.rawValue), TJFLAG_STOPONWARNING)
        guard status == 0 else {
            throw DatasetError(.badHeader, file: file, "cannot decode JPEG: \(String(cString: tjGetErrorStr2(handle)))")
        }
        return DecodedImage(width: width, height: height, channels: channels, pixels: pixels)
    }

    /// PNG bytes of an 8-bit image (tests and fixtures).
    public static func encodePNG(_ image: DecodedImage) -> [UInt8]? {
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        png.width = UInt32(image.width)
        png.height = UInt32(image.height)
        png.format = image.channels == 1 ? 0 : UInt32(PNG_FORMAT_FLAG_COLOR)
        defer { png_image_free(&png) }
        var size = 0
        var pixels = image.pixels
        guard png_image_write_to_memory(&png, nil, &size, 0, &pixels, 0, nil) != 0, size > 0 else { return nil }
        var out = [UInt8](repeating: 0, count: size)
        guard png_image_write_to_memory(&png, &out, &size, 0, &pixels, 0, nil) != 0 else { return nil }
        return Array(out.prefix(size))
    }

    /// JPEG bytes of an 8-bit image at `quality` (tests and fixtures).
    public static func encodeJPEG(_ image: DecodedImage, quality: Int32 = 95) -> [UInt8]? {
        guard let handle = tjInitCompress() else { return nil }
        defer { tjDestroy(handle) }
        var buffer: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        var pixels = image.pixels
        let format = image.channels == 1 ? TJPF_GRAY : TJPF_RGB
        let sampling = image.channels == 1 ? TJSAMP_GRAY : TJSAMP_444
        guard tjCompress2(handle, &pixels, Int32(image.width), 0, Int32(image.height), Int32(format.rawValue),
                          &buffer, &size, Int32(sampling.rawValue), quality, 0) == 0, let buffer else { return nil }
        defer { tjFree(buffer) }
        return Array(UnsafeBufferPointer(start: buffer, count: Int(size)))
    }
}

/// How images are resized to the folder's `--image-size`.
public enum ResizeFilter: String, CaseIterable, Sendable, Codable {
    /// Bilinear interpolation between the 4 nearest pixels (pixel centres aligned, as
    /// OpenCV's INTER_LINEAR and PIL's BILINEAR without antialiasing): sharp, aliases when
    /// shrinking by more than 2x.
    case bilinear
    /// Area averaging: each output pixel is the mean of the source area it covers (fractional
    /// edges weighted), as OpenCV's INTER_AREA: the right choice for shrinking.
    case area

    /// `image` resized to `width` x `height`.
    public func resize(_ image: DecodedImage, width: Int, height: Int) -> DecodedImage {
        if image.width == width && image.height == height { return image }
        let c = image.channels
        var out = [UInt8](repeating: 0, count: width * height * c)
        let sx = Double(image.width) / Double(width), sy = Double(image.height) / Double(height)
        switch self {
        case .bilinear:
            for y in 0..<height {
                let fy = min(max((Double(y) + 0.5) * sy - 0.5, 0), Double(image.height - 1))
                let y0 = Int(fy), y1 = min(y0 + 1, image.height - 1), wy = fy - Double(y0)
                for x in 0..<width {
                    let fx = min(max((Double(x) + 0.5) * sx - 0.5, 0), Double(image.width - 1))
                    let x0 = Int(fx), x1 = min(x0 + 1, image.width - 1), wx = fx - Double(x0)
                    for ch in 0..<c {
                        func p(_ yy: Int, _ xx: Int) -> Double { Double(image.pixels[(yy * image.width + xx) * c + ch]) }
                        let v = (p(y0, x0) * (1 - wx) + p(y0, x1) * wx) * (1 - wy) + (p(y1, x0) * (1 - wx) + p(y1, x1) * wx) * wy
                        out[(y * width + x) * c + ch] = UInt8(min(max(v.rounded(), 0), 255))
                    }
                }
            }
        case .area:
            for y in 0..<height {
                let top = Double(y) * sy, bottom = Double(y + 1) * sy
                for x in 0..<width {
                    let left = Double(x) * sx, right = Double(x + 1) * sx
                    var sums = [Double](repeating: 0, count: c)
                    var total = 0.0
                    var yy = Int(top)
                    while Double(yy) < bottom && yy < image.height {
                        let h = min(Double(yy + 1), bottom) - max(Double(yy), top)
                        var xx = Int(left)
                        while Double(xx) < right && xx < image.width {
                            let weight = h * (min(Double(xx + 1), right) - max(Double(xx), left))
                            for ch in 0..<c { sums[ch] += weight * Double(image.pixels[(yy * image.width + xx) * c + ch]) }
                            total += weight
                            xx += 1
                        }
                        yy += 1
                    }
                    for ch in 0..<c { out[(y * width + x) * c + ch] = UInt8(min(max((sums[ch] / total).rounded(), 0), 255)) }
                }
            }
        }
        return DecodedImage(width: width, height: height, channels: c, pixels: out)
    }
}
