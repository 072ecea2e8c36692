// The per-batch statistics on the CPU: the same code as `sum` and `argmax`, written into a slot.
extension CPUBackend {
    public func sum(_ x: Tensor, into out: Tensor, slot: Int) {
        ShapeChecks.slot(out, slot, "sum")
        // `sum` never fails on the CPU; the same code gives the same float.
        out.hostPointer[slot] = (try? sum(x)) ?? .nan
    }

    public func countCorrect(logits: Tensor, labels: Tensor, into out: Tensor, slot: Int) {
        ShapeChecks.countCorrect(logits: logits, labels: labels, into: out, slot: slot)
        let rows = logits.shape[0], k = logits.shape[1]
        let xp = logits.hostPointer, lp = labels.hostPointer
        var correct = 0
        for i in 0..<rows {
            let row = xp + i * k
            var best = row[0], index = 0
            for j in 1..<k where row[j] > best { best = row[j]; index = j }
            if Float(index) == lp[i] { correct += 1 }
        }
        out.hostPointer[slot] = Float(correct)
    }
}
