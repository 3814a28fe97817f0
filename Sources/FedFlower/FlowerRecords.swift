import SwiftProtobuf

/// A Flower `Array`: its element type name (`str(numpy.dtype)`), shape, serialization type and
/// data (for `numpy.ndarray`, a whole `.npy` file).
public struct FlowerArray: Sendable, Equatable {
    public static let numpyType = "numpy.ndarray"

    public var dtype: String
    public var shape: [Int]
    public var stype: String
    public var data: [UInt8]

    public init(dtype: String, shape: [Int], stype: String, data: [UInt8]) {
        self.dtype = dtype
        self.shape = shape
        self.stype = stype
        self.data = data
    }

    /// The Flower array of a NumPy array, as `Array(ndarray)` makes it.
    public init(_ array: NumpyArray) {
        self.init(dtype: array.dtype.rawValue, shape: array.shape, stype: Self.numpyType, data: array.npy)
    }

    /// The NumPy array it carries, checked against the `Array`'s own dtype and shape.
    /// - Throws: ``FlowerError`` `.unsupportedDType` or `.badArray`.
    public func numpy() throws -> NumpyArray {
        guard stype == Self.numpyType else {
            throw FlowerError(.unsupportedDType, "array serialization '\(stype)' is not \(Self.numpyType)")
        }
        let array = try NumpyArray(npy: data)
        guard array.dtype.rawValue == dtype, array.shape == shape else {
            throw FlowerError(
                .badArray,
                "the Array says \(dtype) \(shape) but its .npy data holds \(array.dtype.rawValue) \(array.shape)")
        }
        return array
    }
}

/// A Flower `RecordDict`: named records, in order.
public struct FlowerRecordDict: Sendable, Equatable {
    public enum Record: Sendable, Equatable {
        case arrays([(key: String, array: FlowerArray)])
        case metrics(Flwr_Proto_MetricRecord)
        case config(Flwr_Proto_ConfigRecord)

        public static func == (a: Record, b: Record) -> Bool {
            switch (a, b) {
            case (.arrays(let x), .arrays(let y)): x.map(\.key) == y.map(\.key) && x.map(\.array) == y.map(\.array)
            case (.metrics(let x), .metrics(let y)): x == y
            case (.config(let x), .config(let y)): x == y
            default: false
            }
        }
    }

    public var items: [(key: String, record: Record)]

    public init(_ items: [(key: String, record: Record)] = []) { self.items = items }

    public static func == (a: FlowerRecordDict, b: FlowerRecordDict) -> Bool {
        a.items.map(\.key) == b.items.map(\.key) && a.items.map(\.record) == b.items.map(\.record)
    }

    public subscript(key: String) -> Record? { items.first { $0.key == key }?.record }

    /// The array records, in order.
    public var arrayRecords: [(key: String, arrays: [(key: String, array: FlowerArray)])] {
        items.compactMap { if case .arrays(let a) = $0.record { ($0.key, a) } else { nil } }
    }

    /// The config records, in order.
    public var configRecords: [(key: String, config: Flwr_Proto_ConfigRecord)] {
        items.compactMap { if case .config(let c) = $0.record { ($0.key, c) } else { nil } }
    }
}

/// A content-addressed object tree: its objects by id and the tree of the root.
public struct FlowerObjectTree: Sendable {
    public var objects: [String: FlowerObject]
    public var tree: Flwr_Proto_ObjectTree
    public var rootID: String { tree.objectID }

    /// The objects in the order Flower pushes them: children before parents, each once.
    public var postOrder: [FlowerObject] { tree.postOrderIDs.map { objects[$0]! } }
}

// MARK: - Deflating (records to objects)

extension FlowerRecordDict {
    /// The objects of this RecordDict and its records, as Flower's `deflate` makes them.
    public func deflate() throws -> FlowerObjectTree {
        var objects: [String: FlowerObject] = [:]
        var refs: [(key: String, value: FlowerJSON)] = []
        var children: [Flwr_Proto_ObjectTree] = []
        var childIDs: [String] = []
        for (key, record) in items {
            let sub = try record.deflate()
            objects.merge(sub.objects) { a, _ in a }
            refs.append((key, .string(sub.rootID)))
            if !childIDs.contains(sub.rootID) {
                childIDs.append(sub.rootID)
                children.append(sub.tree)
            }
        }
        let dict = FlowerObject(
            kind: .recordDict, children: childIDs, body: Array(FlowerJSON.object(refs).encoded.utf8))
        objects[dict.id] = dict
        return FlowerObjectTree(objects: objects, tree: Flwr_Proto_ObjectTree(id: dict.id, children: children))
    }
}

extension FlowerRecordDict.Record {
    func deflate() throws -> FlowerObjectTree {
        switch self {
        case .metrics(let m):
            let o = FlowerObject(kind: .metricRecord, children: [], body: try m.serializedBytes() as [UInt8])
            return FlowerObjectTree(objects: [o.id: o], tree: Flwr_Proto_ObjectTree(id: o.id, children: []))
        case .config(let c):
            let o = FlowerObject(kind: .configRecord, children: [], body: try c.serializedBytes() as [UInt8])
            return FlowerObjectTree(objects: [o.id: o], tree: Flwr_Proto_ObjectTree(id: o.id, children: []))
        case .arrays(let arrays):
            var objects: [String: FlowerObject] = [:]
            var refs: [(key: String, value: FlowerJSON)] = []
            var children: [Flwr_Proto_ObjectTree] = []
            var childIDs: [String] = []
            for (name, array) in arrays {
                let sub = array.deflate()
                objects.merge(sub.objects) { a, _ in a }
                refs.append((name, .string(sub.rootID)))
                if !childIDs.contains(sub.rootID) {
                    childIDs.append(sub.rootID)
                    children.append(sub.tree)
                }
            }
            let record = FlowerObject(
                kind: .arrayRecord, children: childIDs, body: Array(FlowerJSON.object(refs).encoded.utf8))
            objects[record.id] = record
            return FlowerObjectTree(objects: objects, tree: Flwr_Proto_ObjectTree(id: record.id, children: children))
        }
    }
}

extension FlowerArray {
    /// The Array object and its chunks: the data cut into pieces of at most 5 MiB; equal pieces
    /// are one child, listed once, and the body's `arraychunk_ids` index the header's children.
    func deflate() -> FlowerObjectTree {
        var objects: [String: FlowerObject] = [:]
        var unique: [String] = []
        var indices: [FlowerJSON] = []
        for start in stride(from: 0, to: data.count, by: FlowerObject.maximumChunkBytes) {
            let end = min(start + FlowerObject.maximumChunkBytes, data.count)
            let chunk = FlowerObject(kind: .arrayChunk, children: [], body: data[start..<end])
            if let i = unique.firstIndex(of: chunk.id) {
                indices.append(.integer(i))
            } else {
                indices.append(.integer(unique.count))
                unique.append(chunk.id)
                objects[chunk.id] = chunk
            }
        }
        let metadata = FlowerJSON.object([
            ("dtype", .string(dtype)), ("shape", .array(shape.map { .integer($0) })), ("stype", .string(stype)),
            ("arraychunk_ids", .array(indices)),
        ])
        let array = FlowerObject(kind: .array, children: unique, body: Array(metadata.encoded.utf8))
        objects[array.id] = array
        return FlowerObjectTree(
            objects: objects,
            tree: Flwr_Proto_ObjectTree(
                id: array.id, children: unique.map { Flwr_Proto_ObjectTree(id: $0, children: []) }))
    }
}

// MARK: - Inflating (objects to records)

extension FlowerRecordDict {
    /// The RecordDict `id` of `objects`, every object checked against its header and the records
    /// it may contain.
    /// - Throws: ``FlowerError`` `.badTree`, `.badRecord` or `.badArray`.
    public static func inflate(id: String, from objects: [String: FlowerObject]) throws -> FlowerRecordDict {
        let dict = try object(id, .recordDict, objects)
        let refs = try references(dict, what: "record")
        var items: [(String, Record)] = []
        for (key, childID) in refs {
            let child = try object(childID, nil, objects)
            switch child.kind {
            case .arrayRecord:
                var arrays: [(String, FlowerArray)] = []
                for (name, arrayID) in try references(child, what: "array") {
                    arrays.append((name, try FlowerArray.inflate(try object(arrayID, .array, objects), objects)))
                }
                items.append((key, .arrays(arrays)))
            case .metricRecord:
                try noChildren(child)
                items.append((key, .metrics(try decode(Flwr_Proto_MetricRecord.self, child))))
            case .configRecord:
                try noChildren(child)
                items.append((key, .config(try decode(Flwr_Proto_ConfigRecord.self, child))))
            default:
                throw FlowerError(.badTree, "record '\(key)' is a \(child.kind.rawValue), not a record")
            }
        }
        return FlowerRecordDict(items)
    }

    static func object(
        _ id: String, _ kind: FlowerObject.Kind?, _ objects: [String: FlowerObject]
    ) throws
        -> FlowerObject
    {
        guard let o = objects[id] else {
            throw FlowerError(.badTree, "object \(id) is referenced but was not received")
        }
        if let kind, o.kind != kind {
            throw FlowerError(.badTree, "object \(id) is a \(o.kind.rawValue) where a \(kind.rawValue) belongs")
        }
        return o
    }

    /// A JSON body of name → child id whose ids are exactly the header's children.
    static func references(_ o: FlowerObject, what: String) throws -> [(key: String, value: String)] {
        guard let refs = try FlowerJSON.parse(o.body).stringMembers else {
            throw FlowerError(.badRecord, "\(o.kind.rawValue) \(o.id) is not a JSON object of \(what) ids")
        }
        guard Set(refs.map(\.value)) == Set(o.children), Set(o.children).count == o.children.count else {
            throw FlowerError(.badTree, "\(o.kind.rawValue) \(o.id) names other \(what)s than its header lists")
        }
        return refs
    }

    static func noChildren(_ o: FlowerObject) throws {
        guard o.children.isEmpty else { throw FlowerError(.badTree, "\(o.kind.rawValue) \(o.id) cannot have children") }
    }

    static func decode<M: SwiftProtobuf.Message>(_: M.Type, _ o: FlowerObject) throws -> M {
        do {
            return try M(serializedBytes: Array(o.body))
        } catch {
            throw FlowerError(.badRecord, "\(o.kind.rawValue) \(o.id) does not decode", cause: error)
        }
    }
}

extension FlowerArray {
    static func inflate(_ o: FlowerObject, _ objects: [String: FlowerObject]) throws -> FlowerArray {
        let meta = try FlowerJSON.parse(o.body)
        guard case .string(let dtype)? = meta["dtype"], case .string(let stype)? = meta["stype"],
            case .array(let dims)? = meta["shape"], case .array(let chunkIndices)? = meta["arraychunk_ids"]
        else {
            throw FlowerError(.badArray, "Array \(o.id) lacks dtype, shape, stype or arraychunk_ids")
        }
        var shape: [Int] = []
        for d in dims {
            guard case .integer(let n) = d, n >= 0 else {
                throw FlowerError(.badArray, "Array \(o.id) has a bad shape")
            }
            shape.append(n)
        }
        var used = Set<Int>()
        var data: [UInt8] = []
        for entry in chunkIndices {
            guard case .integer(let i) = entry, o.children.indices.contains(i) else {
                throw FlowerError(.badArray, "Array \(o.id) names a chunk outside its \(o.children.count) children")
            }
            used.insert(i)
            let chunk = try FlowerRecordDict.object(o.children[i], .arrayChunk, objects)
            try FlowerRecordDict.noChildren(chunk)
            data += chunk.body
        }
        guard used.count == o.children.count, Set(o.children).count == o.children.count else {
            throw FlowerError(.badTree, "Array \(o.id) lists chunks it does not use")
        }
        return FlowerArray(dtype: dtype, shape: shape, stype: stype, data: data)
    }
}
