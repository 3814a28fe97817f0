/// Small experiment files for tests: real Fashion-MNIST, the `mlp`, ten clients, a few local steps,
/// so that a whole run takes a second or two.
public enum TestExperiments {
    /// An experiment named `name` with `extra` YAML lines appended (they may set `strategy`,
    /// `compression`, …; keys given here must not be repeated there).
    public static func fmnist(
        _ name: String, rounds: Int = 5, checkpointEvery: Int = 2, _ extra: String = ""
    )
        -> String
    {
        """
        name: \(name)
        seed: 3
        rounds: \(rounds)
        workers: 2
        model: mlp
        partition: {scheme: dirichlet, clients: 10, alpha: 0.5}
        clients_per_round: 3
        local: {steps: 3, batch_size: 16, lr: 0.05}
        evaluation: {every: 2, samples: 300}
        checkpoint_every: \(checkpointEvery)
        \(extra)

        """
    }
}
