"""`python -m diffgemma.convert MODEL_DIR --outfile X.gguf ...`"""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
