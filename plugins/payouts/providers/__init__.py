"""Payment providers: the interface every provider client implements, and the
httpx client for the provider sandbox (sandbox/ is the simulated service).

Import the concrete pieces from their modules (`payouts.providers.base`,
`payouts.providers.http_client`); this package imports nothing heavy itself.
"""
