"""goodhartlab: measure and mitigate reward hacking (reward-model overoptimization).

Kept import-light on purpose: `goodhart --help` and `import goodhartlab.core` must not pull in
transformers, gymnasium or matplotlib (DESIGN.md §2, "heavy imports only at the edges").
"""

__version__ = "0.1.0"
