"""bench: the diffbench harness (CLI, FLOP counting, timing, ablations, reports).

The harness talks to the model only through ``diffmavil``'s public API.
"""
