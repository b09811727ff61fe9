"""`bridge serve`: webhooks as hints (docs/webhooks.md).

A vendor's webhook call is checked (signature, replay window, size, duplicates) and
answered 202 at once (`app.py`, `intake.py`); the tickets it names wait a moment for
others (`queue.py`) and then one targeted run per pair re-reads them from the vendor and
copies what changed through the same pipeline as `bridge sync` (`runner.py`). A webhook
never sets a state: lost, repeated, reordered or forged calls change nothing a scheduled
sync would not, and the scheduled sync keeps running as the safety net.
"""
