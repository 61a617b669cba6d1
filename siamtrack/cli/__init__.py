"""The `siamtrack` command: the only place that parses arguments or prints. One module per subcommand,
each with its parser and its handler; options.py holds the options they share."""
from .main import build_parser, main

__all__ = ["build_parser", "main"]
