"""Entry point for vot-toolkit's `protocol = traxpython`, which runs `python -c "import <command>"`:
importing this module serves the default siamtrack model over TraX until the toolkit quits."""
from .vot import serve

serve()
