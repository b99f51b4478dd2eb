"""Payment providers: the connector contract (`contract`), the registry of connector
kinds and providers as Airflow connections (`registry`), and one folder per kind
(`generic/`: the provider API over HTTP).

Import the pieces from their modules; this package imports nothing heavy itself.
The provider sandbox is a package of its own (`payouts_sandbox`) that the
runtime never imports.
"""
