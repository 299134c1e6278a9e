"""Models with a ticket: compaction and its inverse, auto-class registration, loading pruned models, rewinding to the
pre-trained weights and ONNX export."""
