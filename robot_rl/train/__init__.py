"""Training loop, evaluation, checkpoints and metrics."""
