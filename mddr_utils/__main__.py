"""`python -m mddr_utils {extract,train,predict,table}`: the command line of `mddr_utils.cli` (also under torchrun)."""
import sys

from .cli import main

sys.exit(main())
