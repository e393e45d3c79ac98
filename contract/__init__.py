"""The /v1 wire contract: request and response bodies of the HTTP API.

Imported by the server (api/) and by the SDK (client/), never the other way round, and
free of FastAPI and Temporal: a service can take these models and nothing else. Where
a shape equals a domain model (journey state, start and event acknowledgements) the
domain model is used as is.

Validation errors never echo the value: it may be patient data.
"""
