import ArgumentParser
import FedCompress
import FedCore
import FedTensor

extension FedSwiftCommand {
    /// Lists the update codecs.
    struct CodecsCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "codecs", abstract: "List the update codecs and their parameters.")

        func run() {
            for codec in Codecs.catalog {
                print("\(codec.name): \(codec.summary)")
                for p in codec.parameters {
                    let d = p.defaultValue.map { " (default \($0))" } ?? ""
                    print("    \(p.name): \(p.meaning)\(d)")
                }
            }
        }
    }

    /// Encode/decode throughput of one codec, comparable with `torch_train_bench.py topk`.
    struct BenchCodec: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "codec",
            abstract: "Time encode and decode of one codec on N(0,1) floats (medians of 20 runs after 3 warm-ups).")

        @Option(help: "Codec name (see `fedswift codecs`).") var codec = "topk"
        @Option(help: "Fraction kept, for sparsifying codecs (sets the codec's 'ratio').") var ratio: Double?
        @Option(name: .customLong("param"), help: "Codec parameter key=value (repeatable), e.g. --param s=16.")
        var parameters: [String] = []
        @Option(help: "Number of floats (default: the FedAvg CNN's parameter count).") var elements = 1_663_370
        @Option(help: "Matrix view for PowerSGD, rows (columns = elements / rows).") var rows: Int?
        @Flag(help: "Print one JSON object.") var json = false

        func run() throws {
            var params: [String: Double] = [:]
            if let ratio { params["ratio"] = ratio }
            for p in parameters {
                let parts = p.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, let v = Double(parts[1]) else {
                    throw ValidationError("--param must look like key=number, got '\(p)'")
                }
                params[parts[0]] = v
            }
            guard elements >= 1 else { throw ValidationError("--elements must be at least 1") }
            let c: any Codec
            do { c = try Codecs.make(name: codec, parameters: params) } catch let e as CodecError {
                throw ValidationError(e.message)
            }
            var rng = SeededRNG(seed: 0, stream: "bench/codec")
            let values = (0..<elements).map { _ in rng.nextNormal() }
            var shape: [Int] = []
            if let rows {
                guard rows >= 1, elements % rows == 0 else { throw ValidationError("--rows must divide --elements") }
                shape = [rows, elements / rows]
            }
            let context = CodecContext(seed: 0, stream: "bench", shape: shape)
            let clock = ContinuousClock()
            var payload: [UInt8] = []
            var encodeTimes: [Double] = []
            var decodeTimes: [Double] = []
            for i in 0..<23 {
                let t0 = clock.now
                payload = try values.withUnsafeBufferPointer { try c.encode($0, context: context) }
                let t1 = clock.now
                _ = try c.decode(payload)
                let t2 = clock.now
                if i >= 3 {
                    encodeTimes.append((t1 - t0).seconds)
                    decodeTimes.append((t2 - t1).seconds)
                }
            }
            let enc = encodeTimes.sorted()[encodeTimes.count / 2]
            let dec = decodeTimes.sorted()[decodeTimes.count / 2]
            if json {
                print(
                    "{\"impl\": \"fedswift\", \"mode\": \"codec\", \"codec\": \"\(c.name)\", \"elements\": \(elements), "
                        + "\"payload_bytes\": \(payload.count), \"encode_seconds\": \(enc), \"decode_seconds\": \(dec), "
                        + "\"compression\": \(Double(4 * elements) / Double(payload.count))}")
            } else {
                print(
                    "\(c.name) on \(elements) floats: \(payload.count) bytes (\(fmt(Double(4 * elements) / Double(payload.count), 1))×), "
                        + "encode \(fmt(enc * 1000, 2)) ms, decode \(fmt(dec * 1000, 2)) ms")
            }
        }
    }
}
