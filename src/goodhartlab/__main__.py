"""`python -m goodhartlab` is the same CLI as `goodhart`, so torchrun/accelerate can launch it."""

from goodhartlab.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
