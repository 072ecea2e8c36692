import CDNNL
import CDNNLLoader

/// The instruction set oneDNN's kernels use on this CPU (chosen at run time from the CPU's
/// features), shown in the CPU backend's name.
enum DNNLInstructionSet {
    /// Looked up once: the CPU does not change under a running process.
    static let name: String = {
        var message = [CChar](repeating: 0, count: 256)
        guard strata_dnnl_load(&message, Int32(message.count)) == 0 else { return "unavailable" }
        switch dnnl_get_effective_cpu_isa() {
        case dnnl_cpu_isa_sse41: return "SSE4.1"
        case dnnl_cpu_isa_avx: return "AVX"
        case dnnl_cpu_isa_avx2: return "AVX2"
        case dnnl_cpu_isa_avx2_vnni: return "AVX2 VNNI"
        case dnnl_cpu_isa_avx512_core: return "AVX-512"
        case dnnl_cpu_isa_avx512_core_vnni: return "AVX-512 VNNI"
        case dnnl_cpu_isa_avx512_core_bf16: return "AVX-512 BF16"
        case dnnl_cpu_isa_avx512_core_amx: return "AMX"
        default: return "other ISA"
        }
    }()

    /// Whether oneDNN's effective ISA includes AVX-512 BF16 (it does on AMX CPUs too: the ISA
    /// values are bit masks, each including the ones below it). `ONEDNN_MAX_CPU_ISA` can lower it,
    /// and then oneDNN would run bf16 on its reference loops, so this asks oneDNN, not cpuid.
    static let hasBF16: Bool = {
        var message = [CChar](repeating: 0, count: 256)
        guard strata_dnnl_load(&message, Int32(message.count)) == 0 else { return false }
        let isa = dnnl_get_effective_cpu_isa().rawValue, bf16 = dnnl_cpu_isa_avx512_core_bf16.rawValue
        return isa & bf16 == bf16
    }()
}
