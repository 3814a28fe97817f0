import Foundation
import SwiftProtobuf
import Testing

@testable import FedFlower

/// The objects flwr 1.41.0 itself made (`scripts/make_flower_fixtures.py` wrote
/// `Fixtures/flower-objects.json`).
struct FlowerFixture: @unchecked Sendable {  // read once, never mutated
    let json: [String: Any]

    static let shared: FlowerFixture = {
        let file = #filePath
        let path = String(file[..<file.lastIndex(of: "/")!]) + "/Fixtures/flower-objects.json"
        let data = FileManager.default.contents(atPath: path)!
        return FlowerFixture(json: try! JSONSerialization.jsonObject(with: data) as! [String: Any])
    }()

    var arrays: [[String: Any]] { json["arrays"] as! [[String: Any]] }
    var largeArrays: [[String: Any]] { json["large_arrays"] as! [[String: Any]] }
    func record(_ name: String) -> (id: String, content: [UInt8]) {
        let r = json[name] as! [String: Any]
        return (r["id"] as! String, hex(r["content_hex"] as! String))
    }
    var allObjects: [String: [UInt8]] { (json["all_objects"] as! [String: String]).mapValues(hex) }
}

func hex(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var i = s.startIndex
    while i < s.endIndex {
        let j = s.index(i, offsetBy: 2)
        out.append(UInt8(s[i..<j], radix: 16)!)
        i = j
    }
    return out
}

/// The NumPy array a fixture entry describes.
func fixtureArray(_ e: [String: Any]) throws -> NumpyArray {
    try NumpyArray(npy: hex(e["npy_hex"] as! String))
}

@Suite struct FlowerObjectTests {
    let fixture = FlowerFixture.shared

    @Test func objectIDIsTheSHA256OfTheWholeContent() {
        let object = FlowerObject(kind: .arrayChunk, children: [], body: Array("abc".utf8))
        #expect(object.content == Array("ArrayChunk  3\0abc".utf8))
        // `printf 'ArrayChunk  3\0abc' | sha256sum`
        #expect(object.id == "8f373c1473d725a61442838233deff2aa2a89f72184e517b6a621a3b53abbbd6")
        #expect(object.id.count == 64 && FlowerObject.isObjectID(object.id))
    }

    @Test func smallArraysDeflateToFlowersBytes() throws {
        for e in fixture.arrays {
            let numpy = try fixtureArray(e)
            // numpy.save's bytes come back out of our writer unchanged.
            #expect(numpy.npy == hex(e["npy_hex"] as! String), "\(e["name"]!)")
            #expect(numpy.dtype.rawValue == e["dtype"] as! String)
            #expect(numpy.shape == e["shape"] as! [Int])
            let tree = FlowerArray(numpy).deflate()
            #expect(tree.rootID == e["array_id"] as! String, "\(e["name"]!)")
            #expect(tree.objects[tree.rootID]!.content == hex(e["array_content_hex"] as! String))
            #expect(tree.objects[tree.rootID]!.children == e["chunk_ids"] as! [String])
        }
    }

    @Test func npyRoundTripsAndValues() throws {
        let w32 = try fixtureArray(fixture.arrays.first { $0["name"] as! String == "w32" }!)
        #expect(try w32.floats() == [1.5, -2.25, 3.0, 0.0, -0.0, 1e-30])
        let w64 = try fixtureArray(fixture.arrays.first { $0["name"] as! String == "w64" }!)
        #expect(try w64.doubles() == [1.0, -2.0, 3.5, 1e300])
        #expect(try w64.floats()[3] == .infinity)  // 1e300 does not fit a Float
        let i64 = try fixtureArray(fixture.arrays.first { $0["name"] as! String == "i64" }!)
        #expect(try i64.int64s() == Array(-4..<4))
        #expect(i64.shape == [2, 2, 2])
        let scalar = try fixtureArray(fixture.arrays.first { $0["name"] as! String == "scalar" }!)
        #expect(scalar.shape == [])
        #expect(try scalar.floats() == [7])
        let empty = try fixtureArray(fixture.arrays.first { $0["name"] as! String == "empty" }!)
        #expect(empty.shape == [0, 3] && empty.elements.isEmpty)
        // Ours, of several shapes and types, through .npy and back.
        let cases: [NumpyArray] = [
            NumpyArray(float32: (0..<24).map { Float($0) * 0.5 - 3 }, shape: [2, 3, 4]),
            NumpyArray(float64: [.pi, -.ulpOfOne, 0], shape: [3, 1]),
            NumpyArray(int64: [.min, -1, 0, .max], shape: [4]),
            NumpyArray(float32: [], shape: [0]),
            NumpyArray(int64: [5], shape: []),
            NumpyArray(float32: [Float](repeating: 1, count: 12_345), shape: [12_345]),
        ]
        for a in cases {
            let bytes = a.npy
            #expect(bytes.count % 64 == a.elements.count % 64, "elements start 64-aligned")
            #expect(try NumpyArray(npy: bytes) == a)
        }
    }

    @Test func bigEndianAndVersionTwoHeadersParse() throws {
        // '>f4' [1.0, -2.0]: numpy.array([1, -2], dtype='>f4'); written by hand in format 2.0.
        let dict = Array("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }".utf8)
        let header = dict + [UInt8](repeating: 0x20, count: 64 - (12 + dict.count + 1) % 64) + [0x0A]
        let n = UInt32(header.count)
        var file = NumpyArray.magic + [2, 0] + [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), 0, 0]
        file += header
        file += [0x3F, 0x80, 0, 0, 0xC0, 0, 0, 0]
        #expect(try NumpyArray(npy: file).floats() == [1, -2])
    }

    @Test func malformedNpyIsRefusedWithAReason() throws {
        let good = NumpyArray(float32: [1, 2, 3], shape: [3]).npy
        func refuses(_ bytes: [UInt8], _ code: FlowerError.Code, _ line: Int = #line) {
            #expect(throws: FlowerError.self, "line \(line)") { try NumpyArray(npy: bytes) }
            do {
                _ = try NumpyArray(npy: bytes)
            } catch let e as FlowerError {
                #expect(e.code == code, "line \(line): \(e)")
            } catch {}
        }
        refuses(Array(good.dropLast()), .badArray)  // an element short
        refuses(good + [0], .badArray)  // a byte too many
        refuses(Array(good.prefix(9)), .badArray)
        refuses([0x93] + Array("NUMPX".utf8) + Array(good.dropFirst(6)), .badArray)
        func withHeader(_ text: String) -> [UInt8] {
            let body = Array(text.utf8) + [0x0A]
            return NumpyArray.magic + [1, 0, UInt8(body.count), 0] + body + Array(repeating: 0, count: 12)
        }
        refuses(withHeader("{'descr': '<U4', 'fortran_order': False, 'shape': (3,), }"), .unsupportedDType)
        refuses(withHeader("{'descr': '|O', 'fortran_order': False, 'shape': (3,), }"), .unsupportedDType)
        refuses(withHeader("{'descr': '<f4', 'fortran_order': True, 'shape': (3,), }"), .badArray)
        refuses(withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }"), .badArray)
        refuses(withHeader("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }"), .badArray)
        refuses(withHeader("{'descr': '<f4', 'shape': (3,), }"), .badArray)
        // 12 bytes of elements are exactly three float32s: the well-formed header parses.
        #expect(try NumpyArray(npy: withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }")).count == 3)
    }

    @Test(arguments: 0..<5) func largeArraysChunkAsFlowerDoes(index: Int) throws {
        let e = fixture.largeArrays[index]
        let dtype = NumpyArray.DType(rawValue: e["dtype"] as! String)!
        let count = (e["shape"] as! [Int])[0]
        let numpy: NumpyArray
        if e["rule"] as! String == "zeros" {
            numpy = try NumpyArray(
                dtype: dtype, shape: [count], elements: [UInt8](repeating: 0, count: count * dtype.size))
        } else if dtype == .float32 {
            numpy = NumpyArray(float32: (0..<count).map { Float($0 % 251 - 125) }, shape: [count])
        } else {
            numpy = NumpyArray(float64: (0..<count).map { Double($0 % 251 - 125) }, shape: [count])
        }
        #expect(numpy.npy.count == e["data_bytes"] as! Int)
        let tree = FlowerArray(numpy).deflate()
        #expect(tree.rootID == e["array_id"] as! String)
        let chunks = e["chunk_ids"] as! [String]  // one per 5 MiB piece, repeats included
        var unique: [String] = []
        for c in chunks where !unique.contains(c) { unique.append(c) }
        #expect(tree.objects[tree.rootID]!.children == unique)
        for c in unique {
            #expect(tree.objects[c]!.body.count <= FlowerObject.maximumChunkBytes)
        }
        // And back: the chunks reassemble into the same array.
        let back = try FlowerArray.inflate(tree.objects[tree.rootID]!, tree.objects)
        #expect(try back.numpy() == numpy)
    }

    @Test func recordsDeflateToFlowersObjects() throws {
        let arrays = try fixture.arrays.map { ($0["name"] as! String, FlowerArray(try fixtureArray($0))) }
        let arrayTree = try FlowerRecordDict.Record.arrays(arrays).deflate()
        #expect(arrayTree.rootID == fixture.record("array_record").id)
        #expect(arrayTree.objects[arrayTree.rootID]!.content == fixture.record("array_record").content)
        // zeros_a and zeros_b are the same Array: listed once among the children, named twice.
        #expect(arrayTree.objects[arrayTree.rootID]!.children.count == arrays.count - 1)

        // The config and metric records as flwr serializes them (protobuf bodies).
        let configObject = try FlowerObject.parse(
            fixture.record("config_record").content, id: fixture.record("config_record").id)
        let config = try Flwr_Proto_ConfigRecord(serializedBytes: Array(configObject.body))
        #expect(config.items.map(\.key) == ["lr", "server-round", "name", "flag", "big", "list", "ints"])
        #expect(config.items[0].value.double == 0.05 && config.items[1].value.sint64 == 3)
        #expect(config.items[2].value.string == "fmnist é" && config.items[3].value.bool)
        #expect(config.items[4].value.uint64 == (UInt64(1) << 63) + 5)
        #expect(try FlowerRecordDict.Record.config(config).deflate().rootID == fixture.record("config_record").id)
        var metrics = Flwr_Proto_MetricRecord()
        metrics.items = [
            .init(key: "train_loss", value: .double(0.25)), .init(key: "num-examples", value: .sint64(1200)),
        ]
        let metricTree = try FlowerRecordDict.Record.metrics(metrics).deflate()
        #expect(metricTree.rootID == fixture.record("metric_record").id)

        let dict = FlowerRecordDict([
            ("arrays", .arrays(arrays)), ("config", .config(config)), ("metrics", .metrics(metrics)),
        ])
        let dictTree = try dict.deflate()
        #expect(dictTree.rootID == fixture.record("record_dict").id)
        #expect(dictTree.objects[dictTree.rootID]!.content == fixture.record("record_dict").content)
    }

    @Test func flowersMessageInflatesAndDeflatesBack() throws {
        let all = fixture.allObjects
        let root = fixture.record("message")
        // The tree of the message, as PullMessages would announce it.
        func tree(_ id: String) throws -> Flwr_Proto_ObjectTree {
            let o = try FlowerObject.parse(all[id]!, id: id)
            return Flwr_Proto_ObjectTree(id: id, children: try o.children.map(tree))
        }
        let t = try tree(root.id)
        let message = try FlowerMessage.inflate(tree: t, contents: all)
        #expect(message.metadata.messageID == root.id)
        #expect(message.metadata.runID == 987_654_321 && message.metadata.dstNodeID == 123_456_789)
        #expect(message.metadata.messageType == "train" && message.metadata.groupID == "3")
        #expect(message.metadata.srcTaskID == 42 && !message.metadata.hasDstTaskID)
        let content = try #require(message.content)
        #expect(content.items.map(\.key) == ["arrays", "config", "metrics"])
        guard case .arrays(let arrays)? = content["arrays"] else {
            Issue.record("no arrays")
            return
        }
        #expect(arrays.map(\.key) == ["w32", "w64", "i64", "scalar", "empty", "zeros_a", "zeros_b"])
        #expect(try arrays[0].array.numpy().floats() == [1.5, -2.25, 3.0, 0.0, -0.0, 1e-30])
        // Deflating what we read gives Flower's message object, byte for byte.
        let (objects, announced) = try message.deflate()
        #expect(objects.rootID == root.id)
        #expect(objects.objects[root.id]!.content == root.content)
        #expect(announced.metadata.messageID == root.id && announced.hasContent && !announced.hasError)
        #expect(Set(objects.objects.keys) == Set(all.keys))
    }

    @Test func replyMirrorsTheInstruction() throws {
        var ins = Flwr_Proto_Metadata()
        ins.runID = 7
        ins.messageID = String(repeating: "ab", count: 32)
        ins.srcNodeID = 1
        ins.dstNodeID = 99
        ins.groupID = "2"
        ins.messageType = "train"
        ins.createdAt = 1_000_000
        ins.ttl = 3600
        ins.srcTaskID = 5
        let reply = FlowerMessage.reply(to: ins, content: FlowerRecordDict(), now: 1_000_100)
        let m = reply.metadata
        #expect(m.runID == 7 && m.srcNodeID == 99 && m.dstNodeID == 1 && m.replyToMessageID == ins.messageID)
        #expect(m.groupID == "2" && m.messageType == "train" && m.createdAt == 1_000_100 && m.ttl == 3500)
        #expect(m.dstTaskID == 5 && !m.hasSrcTaskID)
        let (objects, announced) = try reply.deflate()
        #expect(announced.metadata.messageID == objects.rootID)
        // The announced message has no content of its own, only an empty RecordDict.
        #expect(announced.hasContent && announced.content.items.isEmpty)
        var error = Flwr_Proto_Error()
        error.code = 2
        error.reason = "nope"
        let failed = FlowerMessage.reply(to: ins, content: FlowerRecordDict(), error: error, now: 1_000_100)
        let (errorObjects, errorAnnounced) = try failed.deflate()
        #expect(errorObjects.objects.count == 1 && errorAnnounced.hasError && !errorAnnounced.hasContent)
        let back = try FlowerMessage.inflate(
            tree: errorObjects.tree, contents: errorObjects.objects.mapValues(\.content))
        #expect(back.error?.reason == "nope" && back.content == nil)
    }
}

/// What a node refuses in pulled objects: everything a broken or hostile SuperLink could send.
@Suite struct HostileObjectTests {
    let fixture = FlowerFixture.shared

    func messageTree() throws -> (Flwr_Proto_ObjectTree, [String: [UInt8]]) {
        let all = fixture.allObjects
        func tree(_ id: String) throws -> Flwr_Proto_ObjectTree {
            Flwr_Proto_ObjectTree(id: id, children: try FlowerObject.parse(all[id]!, id: id).children.map(tree))
        }
        return (try tree(fixture.record("message").id), all)
    }

    func code(_ body: () throws -> Void) -> FlowerError.Code? {
        do {
            try body()
            return nil
        } catch let e as FlowerError {
            return e.code
        } catch {
            return nil
        }
    }

    @Test func aTamperedObjectFailsItsID() throws {
        let (tree, all) = try messageTree()
        // Flip one byte of each object in turn: every one is caught by its id.
        for id in all.keys {
            var tampered = all
            tampered[id]![tampered[id]!.count - 1] ^= 0x01
            #expect(code { _ = try FlowerMessage.inflate(tree: tree, contents: tampered) } == .idMismatch)
        }
    }

    @Test func badHeadersAreRefused() {
        func parse(_ text: String) -> FlowerError.Code? {
            let bytes = Array(text.utf8)
            return code { _ = try FlowerObject.parse(bytes, id: FlowerObject.id(of: bytes)) }
        }
        #expect(parse("ArrayChunk  3\0abc") == nil)
        #expect(parse("ArrayChunk  4\0abc") == .badObject)  // body shorter than announced
        #expect(parse("ArrayChunk  2\0abc") == .badObject)  // body past its announced length
        #expect(parse("ArrayChunk  +3\0abc") == .badObject)
        #expect(parse("ArrayChunk 3\0abc") == .badObject)  // two fields
        #expect(parse("ArrayChunk   3\0abc") == .badObject)  // four fields
        #expect(parse("ArrayChunk  3abc") == .badObject)  // no divider
        #expect(parse("Pickle  3\0abc") == .unknownObjectType)
        #expect(parse("Array XYZ 3\0abc") == .badObject)  // a child that is no id
        #expect(parse("Array \(String(repeating: "A", count: 64)) 3\0abc") == .badObject)  // uppercase hex
    }

    @Test func treesThatDoNotMatchTheirObjectsAreRefused() throws {
        let (tree, all) = try messageTree()
        // A child left out of the announced tree.
        var pruned = tree
        pruned.children[0].children.removeLast()
        #expect(code { _ = try FlowerMessage.inflate(tree: pruned, contents: all) } == .badTree)
        // An object missing from what was pulled.
        var missing = all
        missing.removeValue(forKey: tree.children[0].children[0].objectID)
        #expect(code { _ = try FlowerMessage.inflate(tree: tree, contents: missing) } == .badTree)
        // A chunk where a record belongs: a valid object in the wrong place.
        let chunk = FlowerObject(kind: .arrayChunk, children: [], body: [1, 2, 3])
        let dict = FlowerObject(kind: .recordDict, children: [chunk.id], body: Array("{\"x\": \"\(chunk.id)\"}".utf8))
        let message = FlowerObject(
            kind: .message, children: [dict.id], body: try Flwr_Proto_Message().serializedBytes() as [UInt8])
        let badTree = Flwr_Proto_ObjectTree(
            id: message.id,
            children: [
                Flwr_Proto_ObjectTree(id: dict.id, children: [Flwr_Proto_ObjectTree(id: chunk.id, children: [])])
            ])
        let contents = [message.id: message.content, dict.id: dict.content, chunk.id: chunk.content]
        #expect(code { _ = try FlowerMessage.inflate(tree: badTree, contents: contents) } == .badTree)
        // A RecordDict naming an object its header does not list.
        let other = FlowerObject(kind: .metricRecord, children: [], body: [])
        let lying = FlowerObject(kind: .recordDict, children: [other.id], body: Array("{\"x\": \"\(chunk.id)\"}".utf8))
        #expect(code { _ = try FlowerRecordDict.references(lying, what: "record") } == .badTree)
        // A body that is not JSON.
        let garbage = FlowerObject(kind: .recordDict, children: [], body: Array("{not json".utf8))
        #expect(code { _ = try FlowerRecordDict.inflate(id: garbage.id, from: [garbage.id: garbage]) } == .badRecord)
    }

    @Test func anArrayWhoseNpyContradictsItIsRefused() throws {
        let numpy = NumpyArray(float32: [1, 2, 3, 4], shape: [4])
        var array = FlowerArray(numpy)
        array.shape = [2, 2]
        #expect(code { _ = try array.numpy() } == .badArray)
        array = FlowerArray(numpy)
        array.dtype = "float64"
        #expect(code { _ = try array.numpy() } == .badArray)
        array = FlowerArray(numpy)
        array.stype = "torch.Tensor"
        #expect(code { _ = try array.numpy() } == .unsupportedDType)
        // An Array pointing at a chunk index it does not have.
        let chunk = FlowerObject(kind: .arrayChunk, children: [], body: numpy.npy)
        let meta = "{\"dtype\": \"float32\", \"shape\": [4], \"stype\": \"numpy.ndarray\", \"arraychunk_ids\": [1]}"
        let bad = FlowerObject(kind: .array, children: [chunk.id], body: Array(meta.utf8))
        #expect(code { _ = try FlowerArray.inflate(bad, [chunk.id: chunk, bad.id: bad]) } == .badArray)
    }

    @Test func jsonMatchesPythonsDumps() throws {
        let value = FlowerJSON.object([
            ("a", .string("x\"y\\z\n")), ("é", .string("\u{1F600}")), ("n", .array([.integer(1), .integer(-2)])),
            ("e", .object([])),
        ])
        // json.dumps({"a": "x\"y\\z\n", "é": "😀", "n": [1, -2], "e": {}})
        #expect(value.encoded == #"{"a": "x\"y\\z\n", "\u00e9": "\ud83d\ude00", "n": [1, -2], "e": {}}"#)
        #expect(try FlowerJSON.parse(Array(value.encoded.utf8)) == value)
        #expect(throws: FlowerError.self) { try FlowerJSON.parse(Array("{\"a\": 1, \"a\": 2}".utf8)) }
        #expect(throws: FlowerError.self) { try FlowerJSON.parse(Array("[1, 2".utf8)) }
        #expect(throws: FlowerError.self) { try FlowerJSON.parse(Array(String(repeating: "[", count: 100).utf8)) }
    }
}
