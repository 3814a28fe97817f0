import Foundation
import Prometheus

/// What a coordinator counts, in a Prometheus registry (swift-prometheus): served in the text
/// format by ``MetricsServer`` (`fedswift serve --metrics HOST:PORT`).
///
/// - `fedswift_connected_clients`: sessions open now;
/// - `fedswift_round`: the last round started;
/// - `fedswift_round_duration_seconds`: wall time of each round (histogram);
/// - `fedswift_bytes_sent_total`, `fedswift_bytes_received_total`: payload bytes of model
///   downloads and update uploads;
/// - `fedswift_updates_accepted_total`, `fedswift_updates_rejected_total{reason}`: updates the
///   engine aggregated or rejected (`invalid`: not decodable, not finite, wrong size or above the
///   norm bound; `client_failure`; `late`);
/// - `fedswift_joins_refused_total{code}`: Joins refused, by gRPC status;
/// - `fedswift_sessions_ended_total{cause}`: sessions the coordinator ended (`silent`: no message
///   for twice the heartbeat; `protocol`: a message that broke the wire contract; `replaced`: the
///   client opened a new session; `stream_error`: the transport failed the stream).
public final class CoordinatorMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let connected: Gauge
    let round: Gauge
    let roundDuration: DurationHistogram
    let bytesSent: Counter
    let bytesReceived: Counter
    let accepted: Counter

    public init() {
        connected = registry.makeGauge(name: "fedswift_connected_clients", help: "Client sessions open now.")
        round = registry.makeGauge(name: "fedswift_round", help: "The last round started.")
        roundDuration = registry.makeDurationHistogram(
            name: "fedswift_round_duration_seconds",
            buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600].map { Duration.milliseconds(1000 * $0) },
            help: "Wall time of each round.")
        bytesSent = registry.makeCounter(
            name: "fedswift_bytes_sent_total", help: "Payload bytes sent to clients (models and vectors).")
        bytesReceived = registry.makeCounter(
            name: "fedswift_bytes_received_total", help: "Payload bytes received from clients (updates and vectors).")
        accepted = registry.makeCounter(name: "fedswift_updates_accepted_total", help: "Updates aggregated.")
    }

    func connected(_ count: Int) { connected.set(Double(count)) }
    func started(round: Int) { self.round.set(Double(round)) }
    func finishedRound(after duration: Duration) { roundDuration.record(duration) }
    func sent(bytes: Int) { bytesSent.increment(by: Int64(bytes)) }
    func received(bytes: Int) { bytesReceived.increment(by: Int64(bytes)) }
    func accepted(updates: Int) { accepted.increment(by: Int64(updates)) }

    func rejected(reason: String) {
        registry.makeCounter(
            name: "fedswift_updates_rejected_total", labels: [("reason", reason)], help: "Updates rejected, by reason."
        ).increment()
    }

    func refusedJoin(code: String) {
        registry.makeCounter(
            name: "fedswift_joins_refused_total", labels: [("code", code)], help: "Joins refused, by gRPC status."
        ).increment()
    }

    func endedSession(cause: String) {
        registry.makeCounter(
            name: "fedswift_sessions_ended_total", labels: [("cause", cause)],
            help: "Sessions the coordinator ended, by cause."
        ).increment()
    }

    /// The metrics in Prometheus' text exposition format.
    public func text() -> String { registry.emitToString() }
}
