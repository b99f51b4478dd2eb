"""The provider sandbox: an HTTP service that behaves like payment rails.

Latency, idempotency, transient faults, definitive rejections with ISO reason
codes, returns days later, and end-of-day statements in the real formats.
Run it with `python -m payouts_sandbox`, or start a subprocess with
`payouts_sandbox.process.start_sandbox`. It never imports the
project's statement parsers, and they never import it.
"""
