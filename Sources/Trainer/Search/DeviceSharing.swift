import GPUTensor
#if canImport(Glibc)
import Glibc
#endif

/// Several trials on one GPU (`--trials-per-device`): how many worker processes share each card,
/// and which card each worker slot gets.
///
/// A seed-000 trial uses well under 1% of a modern GPU's arithmetic, so one trial per card wastes
/// it; several worker processes per card fill it (each with its own CUDA context, stream and
/// memory: a trial that runs out of memory or crashes takes only its process down). How many fit
/// comes from an estimate of one trial's device memory (`TrialMemory`) against the card's free
/// memory when the study starts (`GPUQuery`), at most `maxTrialsPerDevice`.
///
/// Workers: `devices x trialsPerDevice` unless `--workers` says otherwise; worker slot k runs on
/// `devices[k % devices.count]` (round robin), given to its process as `CUDA_VISIBLE_DEVICES`, so a
/// trial's `cuda` / `auto` device is that card. On the CPU the setting means nothing and is refused.
public struct DeviceSharing: Equatable, Sendable {
    /// The cards the workers are spread over, as `CUDA_VISIBLE_DEVICES` names them.
    public var devices: [String]
    public var trialsPerDevice: Int
    /// One trial's estimated device memory (nil: not estimated, `trialsPerDevice` was given).
    public var perTrialBytes: Int?
    /// `devices` are nvidia-smi's indices (PCI bus order), not names from the user's `CUDA_VISIBLE_DEVICES`.
    public var busOrder = false

    public static let maxTrialsPerDevice = 8
    /// The share of a card's free memory the trials may plan on (the rest absorbs estimate error,
    /// allocator rounding and fragmentation).
    public static let usableFraction = 0.8

    public init(devices: [String], trialsPerDevice: Int, perTrialBytes: Int? = nil) {
        self.devices = devices
        self.trialsPerDevice = trialsPerDevice
        self.perTrialBytes = perTrialBytes
    }

    /// Workers when `--workers` is not given.
    public var workers: Int { max(1, devices.count) * trialsPerDevice }

    /// The card of worker slot `k` (round robin over `devices`).
    public func device(ofSlot k: Int) -> String { devices[k % devices.count] }

    /// The environment worker slot `k`'s process gets: its card as the only one it sees (in
    /// nvidia-smi's numbering, which is the PCI bus order, when that is where the names came from).
    public func environment(ofSlot k: Int) -> [String] {
        guard !devices.isEmpty else { return [] }
        return ["CUDA_VISIBLE_DEVICES=\(device(ofSlot: k))"] + (busOrder ? ["CUDA_DEVICE_ORDER=PCI_BUS_ID"] : [])
    }

    /// Trials of `perTrialBytes` that fit in `freeBytes` (its usable fraction), 1...maxTrialsPerDevice.
    public static func fitting(freeBytes: Int, perTrialBytes: Int) -> Int {
        guard perTrialBytes > 0 else { return maxTrialsPerDevice }
        let n = Int(Double(freeBytes) * usableFraction) / perTrialBytes
        return min(maxTrialsPerDevice, max(1, n))
    }

    /// The problem with `--trials-per-device` for a study on `device` by a binary with or without
    /// CUDA, as one line; nil when fine.
    public static func problem(trialsPerDevice: Int?, device: String, hasCUDA: Bool = BackendFactory.hasCUDA) -> String? {
        guard let n = trialsPerDevice else { return nil }
        guard (1...maxTrialsPerDevice).contains(n) else {
            return "--trials-per-device must be in 1...\(maxTrialsPerDevice), not \(n)"
        }
        if device == "cpu" {
            return "--trials-per-device shares a GPU between trials; this study runs on the CPU (--device cpu): use --workers"
        }
        if !hasCUDA {
            return "--trials-per-device shares a GPU between trials; this strata was built without CUDA, so trials run on the CPU: use --workers"
        }
        return nil
    }

    /// The sharing of a study on `device` (`cuda`, `cuda:N`, `auto`; nil for `cpu`, or `auto` with no
    /// GPU, or this binary without CUDA, `hasCUDA`), with the cards `gpus` (`GPUQuery.query()`)
    /// and `CUDA_VISIBLE_DEVICES` (`visible`, when set). `requested`: `--trials-per-device`;
    /// nil: as many as fit by `perTrialBytes` in the card with the least free memory (no sharing,
    /// as before it existed, when nvidia-smi cannot say: `gpus` nil). Throws when `requested` is
    /// given and no GPU is there.
    public static func plan(device: String, requested: Int?, hasCUDA: Bool, gpus: [GPUMemory]?, visible: String?,
                            perTrialBytes: Int) throws -> DeviceSharing? {
        func noGPU(_ why: String) throws -> DeviceSharing? {
            if let requested { throw SearchError("--trials-per-device \(requested): \(why)") }
            return nil
        }
        if device == "cpu" { return try noGPU("this study runs on the CPU (--device cpu)") }
        guard hasCUDA else { return try noGPU("this strata was built without CUDA, so the study runs on the CPU") }
        if gpus == nil && requested == nil { return nil }
        // The cards: an explicit cuda:N, else those CUDA_VISIBLE_DEVICES leaves, else all that nvidia-smi lists.
        var devices: [String]
        var explicit = false, busOrder = false
        if device.hasPrefix("cuda:") {
            devices = [String(device.dropFirst(5))]
            explicit = true
        } else if let visible, !visible.isEmpty {
            devices = visible.split(separator: ",").map { $0.trimmingSpaces() }.filter { !$0.isEmpty }
        } else {
            devices = (gpus ?? []).map { String($0.index) }
            busOrder = true
        }
        if devices.isEmpty {
            if device == "auto" || gpus != nil { return try noGPU("no CUDA GPU was found (nvidia-smi lists none), so the study runs on the CPU") }
            devices = ["0"]   // cuda asked for, nothing known: the trials' backends will say what is wrong
        }
        let free = devices.compactMap { d in gpus?.first { String($0.index) == d }?.freeBytes }.min()
        let n = requested ?? free.map { fitting(freeBytes: $0, perTrialBytes: perTrialBytes) } ?? 1   // 1: a card nvidia-smi does not list
        // cuda:N: every worker's job names its card already (no CUDA_VISIBLE_DEVICES: that would renumber it).
        var sharing = DeviceSharing(devices: explicit ? [] : devices, trialsPerDevice: n,
                                    perTrialBytes: requested == nil ? perTrialBytes : nil)
        sharing.busOrder = busOrder && !explicit
        return sharing
    }

    /// One line for the terminal: `2 trials per GPU on 0,1 (about 700 MiB each, estimated)`.
    public var description: String {
        "\(trialsPerDevice) trial\(trialsPerDevice == 1 ? "" : "s") per GPU"
            + (devices.isEmpty ? "" : " on \(devices.joined(separator: ","))")
            + (perTrialBytes.map { " (about \($0 >> 20) MiB each, estimated)" } ?? "")
    }
}

/// One trial's device memory, estimated from its model and batch size: parameters, their
/// gradients and the optimizer's state, plus every layer's output and its gradient at the batch
/// size, plus what one CUDA worker process holds whatever it trains (`processOverhead`).
public enum TrialMemory {
    /// A CUDA context with cuBLAS and cuDNN handles, their workspaces and the compiled kernels:
    /// a few hundred MiB on current cards, rounded up.
    public static let processOverhead = 512 << 20

    /// Bytes for `parameters` (each with a gradient and `optimizerSlots` state tensors) and
    /// `activationsPerImage` layer outputs per image (each with a gradient) at `batchSize`,
    /// plus the batch's input, in `bytesPerElement` (4: FP32).
    public static func estimate(parameters: Int, optimizerSlots: Int, activationsPerImage: Int, inputPerImage: Int,
                                batchSize: Int, bytesPerElement: Int = 4) -> Int {
        let elements = parameters * (2 + optimizerSlots) + batchSize * (2 * activationsPerImage + inputPerImage)
        return elements * bytesPerElement + processOverhead
    }

    /// The estimate for `model` trained with `optimizer` at `batchSize`.
    public static func estimate(model: Model, optimizer: OptimizerConfig, batchSize: Int) -> Int {
        var shape = model.inputShape
        var activations = 0
        for layer in model.layers {
            shape = layer.outputShape(input: shape)
            activations += shape.reduce(1, *)
        }
        return estimate(parameters: model.parameterCount, optimizerSlots: optimizer.stateSlots.count,
                        activationsPerImage: activations, inputPerImage: model.inputShape.reduce(1, *), batchSize: batchSize)
    }

    /// The estimate for a search trial on images of `input` with `classes` classes.
    public static func estimate(trial: TrialConfig, input: ImageShape, classes: Int) throws -> Int {
        let config = try trial.trainConfig(data: DataConfig(path: ""), input: input, classes: classes, device: "cpu", reuse: nil)
        return estimate(model: try Model(spec: config.model), optimizer: config.optimizer, batchSize: trial.batchSize)
    }

    /// The largest estimate over `trials` on `data`'s images. The images' shape is not read from
    /// the dataset (a study starts before any worker decodes it): MNIST kinds are 1x28x28, others
    /// 3 channels at `imageSize` or 32x32, with 100 classes (the largest count Strata reads), so
    /// the estimate errs large.
    public static func largest(_ trials: [TrialConfig], data: DataConfig) throws -> Int {
        let mnist = ["mnist", "fashion-mnist"].contains(data.kind ?? "")
        let size = data.imageSize ?? [mnist ? 28 : 32, mnist ? 28 : 32]
        let input = ImageShape(channels: mnist ? 1 : 3, height: size[0], width: size.count > 1 ? size[1] : size[0])
        return try trials.map { try estimate(trial: $0, input: input, classes: 100) }.max() ?? processOverhead
    }
}

/// A GPU's memory as `nvidia-smi` reports it.
public struct GPUMemory: Equatable, Sendable {
    public var index: Int
    public var freeBytes: Int
    public var totalBytes: Int

    public init(index: Int, freeBytes: Int, totalBytes: Int) {
        self.index = index
        self.freeBytes = freeBytes
        self.totalBytes = totalBytes
    }
}

/// The GPUs' free memory, asked of `nvidia-smi` (the driver's tool): no CUDA library is loaded
/// into the search process, whose workers own the cards.
public enum GPUQuery {
    public static let arguments = ["--query-gpu=index,memory.free,memory.total", "--format=csv,noheader,nounits"]

    /// Lines `index, free MiB, total MiB`; throws on anything else.
    public static func parse(_ text: String) throws -> [GPUMemory] {
        try text.split(whereSeparator: \.isNewline).filter { !$0.allSatisfy(\.isWhitespace) }.map { line in
            let fields = line.split(separator: ",").map { $0.trimmingSpaces() }
            guard fields.count == 3, let i = Int(fields[0]), let free = Int(fields[1]), let total = Int(fields[2]),
                  i >= 0, free >= 0, total >= free else {
                throw SearchError("nvidia-smi answered '\(line)', not 'index, free MiB, total MiB'")
            }
            return GPUMemory(index: i, freeBytes: free << 20, totalBytes: total << 20)
        }
    }

    /// The GPUs nvidia-smi lists; nil when it is not installed or fails (no driver).
    public static func query(tool: String = "nvidia-smi") -> [GPUMemory]? {
        var out: [Int32] = [0, 0]
        guard pipe(&out) == 0 else { return nil }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addclose(&actions, out[0])
        let argv = [tool] + arguments
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var child: pid_t = 0
        let rc = posix_spawnp(&child, tool, &actions, nil, cArgs, environ)
        close(out[1])
        defer { close(out[0]) }
        guard rc == 0 else { return nil }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(out[0], &chunk, chunk.count)
            if n > 0 { output += chunk[0..<n]; if output.count > 1 << 20 { break } }
            else if n == 0 || errno != EINTR { break }
        }
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else { return nil }
        return try? parse(String(decoding: output, as: UTF8.self))
    }
}

extension ExecutionRequest {
    /// This request with the `sharing` of a study on `device` whose largest trial needs about
    /// `perTrialBytes()` (asked only when the cards are known and `--trials-per-device` is not
    /// given): the cards from nvidia-smi and `CUDA_VISIBLE_DEVICES`. Unchanged for the CPU and
    /// for a binary without CUDA; throws when `--trials-per-device` is given for those. With
    /// `--engine ray`, only a given `--trials-per-device` counts (Ray's fractional GPUs).
    public func withSharing(device: String, perTrialBytes: () throws -> Int) throws -> ExecutionRequest {
        var out = self
        if let line = DeviceSharing.problem(trialsPerDevice: trialsPerDevice, device: device) { throw SearchError(line) }
        guard device != "cpu", BackendFactory.hasCUDA else { return out }
        if engine == "ray" {
            // The cluster's cards are not this machine's: each trial asks Ray for 1/N of one, and
            // --workers (default N, as for one card) says how many run at once.
            out.sharing = trialsPerDevice.map { DeviceSharing(devices: [], trialsPerDevice: $0) }
            return out
        }
        let visible = getenv("CUDA_VISIBLE_DEVICES").map { String(cString: $0) }
        let gpus = GPUQuery.query()
        let bytes = trialsPerDevice == nil && gpus != nil ? try perTrialBytes() : 0
        out.sharing = try DeviceSharing.plan(device: device, requested: trialsPerDevice, hasCUDA: true,
                                             gpus: gpus, visible: visible, perTrialBytes: bytes)
        return out
    }

    /// `withSharing` for a search: the estimate of its largest planned trial.
    public func withSharing(for settings: SearchSettings) throws -> ExecutionRequest {
        try withSharing(device: settings.device) {
            try TrialMemory.largest((try? settings.plan())?.map(\.config) ?? [], data: settings.data)
        }
    }

    /// `withSharing` for an hpo: its trial's model at the largest batch size its space can give
    /// (and two optimizer state tensors per parameter when the space picks the optimizer).
    public func withSharing(for config: HPOConfig) throws -> ExecutionRequest {
        try withSharing(device: config.trial.device) {
            var batch = config.trial.batchSize
            var slots = config.trial.optimizer.stateSlots.count
            for (name, dimension) in zip(config.names, config.dimensions) {
                if name == "optimizer" { slots = max(slots, 2) }
                guard name == "batch_size" else { continue }
                switch dimension {
                case .int(_, let high, _): batch = max(batch, high)
                case .float(_, let high, _): batch = max(batch, Int(high.rounded(.up)))
                case .categorical(let choices): batch = max(batch, choices.compactMap { Double($0).map { Int($0.rounded(.up)) } }.max() ?? batch)
                }
            }
            let model = try Model(spec: config.trial.model)
            return TrialMemory.estimate(model: model, optimizer: config.trial.optimizer, batchSize: batch)
                + (slots - config.trial.optimizer.stateSlots.count) * model.parameterCount * 4
        }
    }
}
