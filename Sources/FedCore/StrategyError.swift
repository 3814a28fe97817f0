/// An error thrown by a ``Strategy`` or ``StrategyFactory``.
///
/// Carries a broad ``Code`` to branch on, a ``message`` a person can act on and, when one client's
/// update is at fault, that client's id, so the caller can drop the update and aggregate again.
///
/// ```swift
/// do {
///     try strategy.aggregate(global: global, updates: updates, context: context)
/// } catch let error as StrategyError where error.clientID != nil {
///     updates.removeAll { $0.clientID == error.clientID }   // then retry
/// }
/// ```
public struct StrategyError: Error, Sendable {
    /// Broad classification of what went wrong.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// No updates were passed.
        case noUpdates
        /// Two updates carry the same client id.
        case duplicateClient
        /// A delta or control delta does not have one element per global parameter.
        case lengthMismatch
        /// A delta or control delta contains NaN or an infinity.
        case nonFiniteValue
        /// A sample count is zero or negative.
        case invalidSampleCount
        /// A local step count is zero or negative where the strategy needs it.
        case invalidLocalSteps
        /// The strategy needs a vector the update does not carry (SCAFFOLD's control delta).
        case missingVector
        /// The server context is inconsistent with the updates (e.g. more updates than clients).
        case invalidContext
        /// The strategy's state was built for a model with a different number of parameters.
        case stateMismatch
        /// No strategy has the requested name.
        case unknownStrategy
        /// A strategy parameter key is not one the strategy accepts.
        case unknownParameter
        /// A strategy parameter value is out of range.
        case invalidParameter
    }

    /// Broad classification of what went wrong.
    public var code: Code
    /// What went wrong and what was expected versus found.
    public var message: String
    /// The client whose update is at fault, if one is.
    public var clientID: Int?

    /// An error with the given code and message, about `clientID`'s update if given.
    public init(_ code: Code, _ message: String, clientID: Int? = nil) {
        self.code = code
        self.message = message
        self.clientID = clientID
    }
}

extension StrategyError: CustomStringConvertible {
    public var description: String { "\(code): \(message)" }
}
