"""Inference: predict, eval, ensemble, explain and test-time augmentation."""
