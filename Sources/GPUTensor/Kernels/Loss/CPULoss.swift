#if canImport(Glibc)
import Glibc
#endif

extension CPUBackend {
    /// Per row: `loss = log(sum_k exp(z_k - max)) + max - z_label`, stable for any logit range
    /// (the exponentials never exceed 1; their sum is kept in Double).
    public func softmaxCrossEntropy(logits: Tensor, labels: Tensor, losses: Tensor, gradLogits: Tensor?, gradScale: Float) {
        ShapeChecks.softmaxCrossEntropy(logits: logits, labels: labels, losses: losses, gradLogits: gradLogits)
        let rows = logits.shape[0], k = logits.shape[1]
        let zp = logits.hostPointer, lp = labels.hostPointer, outp = losses.hostPointer
        let gp: UnsafeMutablePointer<Float>? = gradLogits?.hostPointer
        parallelFor(rows, grain: Self.grain(itemCost: 4 * k)) { r in
            for i in r {
                let row = zp + i * k
                let labelValue = lp[i]
                let label = Int(labelValue)
                precondition(label >= 0 && label < k && Float(label) == labelValue,
                             "softmaxCrossEntropy: label \(labelValue) in row \(i) is not a class index below \(k)")
                var mx = row[0]
                for j in 1..<k where row[j] > mx { mx = row[j] }
                var s = 0.0
                if let gp {
                    let grow = gp + i * k
                    for j in 0..<k { let e = expf(row[j] - mx); grow[j] = e; s += Double(e) }
                    let inv = Float(1 / s)
                    for j in 0..<k { grow[j] = grow[j] * inv * gradScale }
                    grow[label] -= gradScale
                } else {
                    for j in 0..<k { s += Double(expf(row[j] - mx)) }
                }
                outp[i] = Float(log(s) + Double(mx - row[label]))
            }
        }
    }
}
