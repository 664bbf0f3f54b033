"""The case classes of the bad-input sweep (issue 12): the bad inputs it builds, one module per class, and how it
runs and classifies each. The command is ``benchmarks/bad_input_sweep.py``; nothing runs at import."""
