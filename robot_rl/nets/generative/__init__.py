"""Generative-policy building blocks: time embedding, FiLM denoisers (MLP, 1-D U-Net), noise schedules, fixed-K
samplers, the deployable chunk sampler policy and EMA weights (docs/generative.md)."""
