"""Torch building blocks: MLPs, critic ensembles, normalizers, actors and the deployable policy."""
