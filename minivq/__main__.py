"""`python -m minivq ...`: the command line of `minivq.cli`."""
from minivq.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
