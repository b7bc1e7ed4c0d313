"""The benchmarks the evaluation agent runs, one module per family, and their registry (`auto`)."""
