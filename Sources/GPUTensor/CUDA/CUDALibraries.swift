#if CUDA
import CCudaLoader

/// The CUDA libraries this binary opens at run time (it does not link them; see
/// Sources/CCudaLoader): where it looks, and what it says when one is missing.
///
/// ```
/// cuda:0 is unavailable: CUDA libraries missing: libcudnn.so.9 (libcudnn.so.9: cannot open
///   shared object file: No such file or directory). ...
/// ```
public enum CUDALibraries {
    /// "libcudart.so.13 libcublas.so.13 libcudnn.so.9 libnvrtc.so.13".
    public static var sonames: String { String(cString: strata_cuda_sonames()) }

    /// Opens the four libraries (from `$STRATA_CUDA_LIBS` when set, else the dynamic loader's
    /// search), or throws `DeviceUnavailable` naming each one missing and how to provide it.
    static func load(device: String) throws {
        var message = [CChar](repeating: 0, count: 2048)
        guard strata_cuda_load(&message, Int32(message.count)) != 0 else { return }
        throw DeviceUnavailable(device: device, reason: explain(String(cString: message)))
    }

    /// Whether all four libraries would load from `directories` (nil: the dynamic loader's
    /// search); nothing stays open. The message says which are missing.
    public static func probe(directories: String?) -> (ok: Bool, message: String) {
        var message = [CChar](repeating: 0, count: 2048)
        let status = strata_cuda_probe(directories, &message, Int32(message.count))
        return (status == 0, status == 0 ? "" : explain(String(cString: message)))
    }

    static func explain(_ missing: String) -> String {
        "CUDA libraries missing: \(missing). This strata needs \(sonames); "
            + "install them (scripts/install-cuda.sh, or NVIDIA's pip wheels) and put their directory in "
            + "STRATA_CUDA_LIBS or LD_LIBRARY_PATH"
    }
}
#endif
