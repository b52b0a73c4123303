"""Training and inference speed measurements: the reference path against the path `unetpp train` runs.

`paths` builds the two set-ups, `train_steps` times interleaved training
steps and counts their FLOPs, `inference` times batched prediction, `report`
turns the results into a table and JSON. `unetpp bench-train` wires them up.
"""
