"""physrl training: command line, training loops, logging, checkpoints, benchmarks."""
