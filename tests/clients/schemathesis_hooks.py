"""Schemathesis hooks for Tenfold's REST document (tests/tests/openapi.rs).

A tus PATCH body is raw bytes (`application/offset+octet-stream`): send it
the way schemathesis sends `application/octet-stream`."""

import schemathesis

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
