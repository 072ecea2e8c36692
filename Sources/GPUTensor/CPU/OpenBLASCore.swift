import CBLAS

/// Which OpenBLAS kernel family runs (`Haswell`, `SkylakeX`, `Cooperlake`, ...): chosen from the
/// CPU when the library loads, unless `OPENBLAS_CORETYPE` forces one. Shown in the backend's name
/// so benchmark reports say which kernels they measured.
public enum OpenBLASCore {
    public static var name: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }
}
