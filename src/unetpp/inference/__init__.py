"""The prediction stages: loading a model, batched prediction, new images and test sets."""
