import SwiftProtobuf

/// A Flower message: metadata, and either content (a RecordDict) or an error.
///
/// On the wire it is a Message object whose body is the protobuf `Message` with an empty
/// `message_id` and no content, with the RecordDict's tree as its only child; the message id is
/// the Message object's id.
public struct FlowerMessage: Sendable, Equatable {
    /// `SUPERLINK_NODE_ID`: the source of every instruction and the destination of every reply.
    public static let superLinkNodeID: UInt64 = 1

    public var metadata: Flwr_Proto_Metadata
    public var content: FlowerRecordDict?
    public var error: Flwr_Proto_Error?

    public init(metadata: Flwr_Proto_Metadata, content: FlowerRecordDict?, error: Flwr_Proto_Error? = nil) {
        self.metadata = metadata
        self.content = content
        self.error = error
    }

    /// The reply to `instruction` created at `now` (Unix seconds), as Flower's `Message(reply_to=)`
    /// makes it: source and destination swapped, the same run, group and type, and the time the
    /// instruction has left as its time to live.
    public static func reply(
        to instruction: Flwr_Proto_Metadata, content: FlowerRecordDict?, error: Flwr_Proto_Error? = nil,
        now: Double
    ) -> FlowerMessage {
        var m = Flwr_Proto_Metadata()
        m.runID = instruction.runID
        m.srcNodeID = instruction.dstNodeID
        m.dstNodeID = instruction.srcNodeID
        m.replyToMessageID = instruction.messageID
        m.groupID = instruction.groupID
        m.createdAt = now
        m.ttl = instruction.createdAt + instruction.ttl - now
        m.messageType = instruction.messageType
        if instruction.hasDstTaskID { m.srcTaskID = instruction.dstTaskID }
        if instruction.hasSrcTaskID { m.dstTaskID = instruction.srcTaskID }
        return FlowerMessage(metadata: m, content: error == nil ? content : nil, error: error)
    }

    /// The message's objects, and the message as PushMessages carries it: its metadata with the
    /// message id (the Message object's id) and, in place of the content, an empty RecordDict.
    public func deflate() throws -> (objects: FlowerObjectTree, announced: Flwr_Proto_Message) {
        var body = Flwr_Proto_Message()
        body.metadata = metadata
        body.metadata.messageID = ""
        if let error { body.error = error }
        var objects: [String: FlowerObject] = [:]
        var children: [Flwr_Proto_ObjectTree] = []
        if error == nil, let content {
            let sub = try content.deflate()
            objects = sub.objects
            children = [sub.tree]
        }
        let message = FlowerObject(
            kind: .message, children: children.map(\.objectID), body: try body.serializedBytes() as [UInt8])
        objects[message.id] = message
        var announced = Flwr_Proto_Message()
        announced.metadata = metadata
        announced.metadata.messageID = message.id
        if let error { announced.error = error } else { announced.content = Flwr_Proto_RecordDict() }
        return (
            FlowerObjectTree(objects: objects, tree: Flwr_Proto_ObjectTree(id: message.id, children: children)),
            announced
        )
    }

    /// The message of `tree` from the objects pulled for it, every object checked: its id, its
    /// header, its children against the tree's, the records inside.
    /// - Parameters:
    ///   - tree: The object tree PullMessages announced.
    ///   - contents: Each object's content by the id it was pulled under.
    /// - Throws: ``FlowerError``.
    public static func inflate(tree: Flwr_Proto_ObjectTree, contents: [String: [UInt8]]) throws -> FlowerMessage {
        var objects: [String: FlowerObject] = [:]
        func check(_ node: Flwr_Proto_ObjectTree) throws {
            guard let content = contents[node.objectID] else {
                throw FlowerError(.badTree, "object \(node.objectID) of the tree was not received")
            }
            let object = try objects[node.objectID] ?? FlowerObject.parse(content, id: node.objectID)
            guard object.children == node.children.map(\.objectID) else {
                throw FlowerError(
                    .badTree,
                    "object \(node.objectID) lists children \(object.children), the tree \(node.children.map(\.objectID))"
                )
            }
            objects[node.objectID] = object
            for child in node.children { try check(child) }
        }
        try check(tree)
        let root = try FlowerRecordDict.object(tree.objectID, .message, objects)
        let body = try FlowerRecordDict.decode(Flwr_Proto_Message.self, root)
        var metadata = body.metadata
        metadata.messageID = root.id
        switch (root.children.count, body.hasError) {
        case (0, true):
            return FlowerMessage(metadata: metadata, content: nil, error: body.error)
        case (1, false):
            return FlowerMessage(
                metadata: metadata, content: try FlowerRecordDict.inflate(id: root.children[0], from: objects))
        default:
            throw FlowerError(.badTree, "message \(root.id) must carry either content or an error")
        }
    }
}
