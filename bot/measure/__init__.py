"""The measuring tools: ``bot eval``, ``bot calibrate``, ``bot bench``, ``bot loadtest``."""
