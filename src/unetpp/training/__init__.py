"""The train stage: configuration, device and layout, steps, the epoch loop, checkpoints and outputs."""
