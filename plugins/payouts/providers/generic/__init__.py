"""The generic connector kind: the project's provider API over HTTP, as the sandbox serves it."""
