"""Schemathesis hooks for the hub's fuzz run (test_hub_openapi.py loads them through
SCHEMATHESIS_HOOKS): the commit route takes application/x-ndjson, sent as generated."""
import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")
