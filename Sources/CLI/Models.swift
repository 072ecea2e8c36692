import ArgumentParser
import Trainer

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the built-in models with parameters and forward FLOPs per image.")

    @Flag(help: "Print a JSON array of {name, input, parameters, forward_flops, stages}.")
    var json = false

    func run() throws {
        // Every name ModelZoo builds, at CIFAR's input; then the Fashion-MNIST variants of the
        // seed papers' models and VGG-16's single head.
        var entries: [(String, ModelSpec)] = try ModelZoo.names.map { ($0, try ModelZoo.spec($0)) }
        entries += try [
            ("cnn", ModelZoo.spec("cnn", input: .fashionMNIST)),
            ("resnet20", ModelZoo.spec("resnet20", input: .fashionMNIST)),
            ("vgg16 (single head)", {
                var s = try ModelZoo.spec("vgg16"); s.vgg?.head = .single; return s
            }()),
        ]
        var rows: [String] = []
        if !json {
            print(pad("model", 22) + pad("input", 9) + pad("parameters", 13) + pad("fwd FLOPs/img", 15) + "stages")
        }
        for (name, spec) in entries {
            let model = try orExit { try Model(spec: spec) }
            let cost = model.cost
            if json {
                rows.append("{\"name\": \"\(name)\", \"input\": \"\(spec.input)\", \"parameters\": \(cost.parameters), "
                            + "\"forward_flops\": \(Int(cost.forward)), \"stages\": \(model.stages.count)}")
            } else {
                print(pad(name, 22) + pad("\(spec.input)", 9) + pad("\(cost.parameters)", 13)
                      + pad(formatCount(cost.forward), 15) + "\(model.stages.map(\.name).joined(separator: ", "))")
            }
        }
        if json { print("[\n  " + rows.joined(separator: ",\n  ") + "\n]") }
    }
}

func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
}
