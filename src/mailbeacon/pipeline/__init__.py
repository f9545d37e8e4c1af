"""The pipeline: stages that turn hits into events, rollups, rules and sends.

`runner` is the one loop every stage runs in (lease, batch, rest, stop), `stages` the
list of them, `process` the process that runs them all beside the HTTP workers. In the
multi-machine mode (`cluster`, `jetstream`, `partitions`) enrich reads the hits stream
of NATS JetStream, its partitions shared between the workers.
"""
