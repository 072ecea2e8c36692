#if canImport(Glibc)
import Glibc
#endif

// PyTorch's update rules (torch.optim, foreach=False, dampening 0), elementwise in float32.
// Each element's state lives at the same index as the parameter, so threads split the range.
// Every loop runs eight lanes at a time, then the tail scalar, with the same operations in
// the same order, so the bits equal the scalar loop's. Written as plain pointer loops these stayed
// scalar (the pointers may alias), and Adam's `sqrtss`/`divss` an element was half of a seed-000
// 1-conv trial's time on the CPU (its 2.3M-weight dense layer, 229 steps an epoch).
extension CPUBackend {
    /// `g = grad + wd*p; v = momentum*v + g; p -= lr * (nesterov ? g + momentum*v : v)`;
    /// without momentum (or velocity) `p -= lr * g`.
    public func sgdUpdate(parameter p: Tensor, gradient grad: Tensor, velocity: Tensor?, learningRate lr: Float, momentum: Float, weightDecay wd: Float, nesterov: Bool) {
        let velocity = ShapeChecks.sgdUpdate(parameter: p, gradient: grad, velocity: velocity, momentum: momentum)
        let pp = p.hostPointer, gp = grad.hostPointer
        guard let velocity else {
            parallelFor(p.count, grain: Self.minWorkPerThread) { r in
                var i = r.lowerBound
                while i + 8 <= r.upperBound {
                    let param = load8(pp + i)
                    store8(param - lr * (load8(gp + i) + wd * param), pp + i)
                    i += 8
                }
                while i < r.upperBound {
                    pp[i] -= lr * (gp[i] + wd * pp[i])
                    i += 1
                }
            }
            return
        }
        let vp = velocity.hostPointer
        parallelFor(p.count, grain: Self.minWorkPerThread) { r in
            if nesterov {
                var i = r.lowerBound
                while i + 8 <= r.upperBound {
                    let param = load8(pp + i)
                    let g = load8(gp + i) + wd * param
                    let v = momentum * load8(vp + i) + g
                    store8(v, vp + i)
                    store8(param - lr * (g + momentum * v), pp + i)
                    i += 8
                }
                while i < r.upperBound {
                    let g = gp[i] + wd * pp[i]
                    let v = momentum * vp[i] + g
                    vp[i] = v
                    pp[i] -= lr * (g + momentum * v)
                    i += 1
                }
            } else {
                var i = r.lowerBound
                while i + 8 <= r.upperBound {
                    let param = load8(pp + i)
                    let v = momentum * load8(vp + i) + (load8(gp + i) + wd * param)
                    store8(v, vp + i)
                    store8(param - lr * v, pp + i)
                    i += 8
                }
                while i < r.upperBound {
                    let v = momentum * vp[i] + (gp[i] + wd * pp[i])
                    vp[i] = v
                    pp[i] -= lr * v
                    i += 1
                }
            }
        }
    }

    /// `g = grad + wd*p; sq = alpha*sq + (1-alpha)*g^2; d = g / (sqrt(sq) + eps)`;
    /// with momentum `buf = momentum*buf + d; p -= lr*buf`, else `p -= lr*d`.
    public func rmspropUpdate(parameter p: Tensor, gradient grad: Tensor, squareAverage sq: Tensor, momentumBuffer buf: Tensor?, learningRate lr: Float, alpha: Float, epsilon eps: Float, momentum: Float, weightDecay wd: Float) {
        let buffer = ShapeChecks.rmspropUpdate(parameter: p, gradient: grad, squareAverage: sq, momentumBuffer: buf, momentum: momentum)
        let pp = p.hostPointer, gp = grad.hostPointer, sp = sq.hostPointer
        let oneMinusAlpha = 1 - alpha
        if let buffer {
            let bp = buffer.hostPointer
            parallelFor(p.count, grain: Self.minWorkPerThread) { r in
                var i = r.lowerBound
                while i + 8 <= r.upperBound {
                    let param = load8(pp + i)
                    let g = load8(gp + i) + wd * param
                    let s = alpha * load8(sp + i) + oneMinusAlpha * g * g
                    store8(s, sp + i)
                    let b = momentum * load8(bp + i) + g / (sqrt8(s) + eps)
                    store8(b, bp + i)
                    store8(param - lr * b, pp + i)
                    i += 8
                }
                while i < r.upperBound {
                    let g = gp[i] + wd * pp[i]
                    let s = alpha * sp[i] + oneMinusAlpha * g * g
                    sp[i] = s
                    let b = momentum * bp[i] + g / (s.squareRoot() + eps)
                    bp[i] = b
                    pp[i] -= lr * b
                    i += 1
                }
            }
        } else {
            parallelFor(p.count, grain: Self.minWorkPerThread) { r in
                var i = r.lowerBound
                while i + 8 <= r.upperBound {
                    let param = load8(pp + i)
                    let g = load8(gp + i) + wd * param
                    let s = alpha * load8(sp + i) + oneMinusAlpha * g * g
                    store8(s, sp + i)
                    store8(param - lr * (g / (sqrt8(s) + eps)), pp + i)
                    i += 8
                }
                while i < r.upperBound {
                    let g = gp[i] + wd * pp[i]
                    let s = alpha * sp[i] + oneMinusAlpha * g * g
                    sp[i] = s
                    pp[i] -= lr * (g / (s.squareRoot() + eps))
                    i += 1
                }
            }
        }
    }

    /// `m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
    /// p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`, with `g = grad + wd*p` (Adam)
    /// or `p *= 1 - lr*wd` first and `g = grad` (AdamW). Bias corrections are computed in Double.
    public func adamUpdate(parameter p: Tensor, gradient grad: Tensor, firstMoment m: Tensor, secondMoment v: Tensor, learningRate lr: Float, beta1: Float, beta2: Float, epsilon eps: Float, weightDecay wd: Float, decoupled: Bool, step: Int) {
        ShapeChecks.adamUpdate(parameter: p, gradient: grad, firstMoment: m, secondMoment: v, step: step)
        let pp = p.hostPointer, gp = grad.hostPointer, mp = m.hostPointer, vp = v.hostPointer
        let bc1 = pow(Double(beta1), Double(step)), bc2 = pow(Double(beta2), Double(step))
        let stepSize = Float(Double(lr) / (1 - bc1))
        let invSqrtBc2 = Float(1 / (1 - bc2).squareRoot())
        let l2: Float = decoupled ? 0 : wd
        let shrink: Float = decoupled ? 1 - lr * wd : 1
        let oneMinusB1 = 1 - beta1, oneMinusB2 = 1 - beta2
        parallelFor(p.count, grain: Self.minWorkPerThread) { r in
            var i = r.lowerBound
            while i + 8 <= r.upperBound {
                let param = load8(pp + i) * shrink
                let g = load8(gp + i) + l2 * param
                let mi = beta1 * load8(mp + i) + oneMinusB1 * g
                let vi = beta2 * load8(vp + i) + oneMinusB2 * g * g
                store8(mi, mp + i)
                store8(vi, vp + i)
                store8(param - stepSize * (mi / (sqrt8(vi) * invSqrtBc2 + eps)), pp + i)
                i += 8
            }
            while i < r.upperBound {
                let param = pp[i] * shrink
                let g = gp[i] + l2 * param
                let mi = beta1 * mp[i] + oneMinusB1 * g
                let vi = beta2 * vp[i] + oneMinusB2 * g * g
                mp[i] = mi
                vp[i] = vi
                pp[i] = param - stepSize * (mi / (vi.squareRoot() * invSqrtBc2 + eps))
                i += 1
            }
        }
    }
}
