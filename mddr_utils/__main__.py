"""`python -m mddr_utils {extract,train,predict}`: the command line of `mddr_utils.cli`."""
import sys

from .cli import main

sys.exit(main())
