"""Training algorithms. Each one consumes `Iterator[Batch]` and returns `TrainingStats`."""
