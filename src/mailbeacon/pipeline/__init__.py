"""The pipeline: the stages that turn hits into events, rollups and actions, and how
they are run (one process, or workers sharing the stream's partitions)."""
