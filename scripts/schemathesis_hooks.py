"""Schemathesis hooks for what the Auth API's OpenAPI document cannot state (loaded by
scripts/openapi-tests.sh).

The document states every rule a schema can: the password rule and `foundryUrl` have a
`pattern`, so Schemathesis generates valid ones from the document alone. What no schema can
say is "in the future": this strategy generates `expiresAt` values that keep it, so that
schema-valid requests are valid to the service. Schemathesis cannot negate a format it only
knows by a strategy, so negative tests of this field vary its type instead.
"""

from datetime import datetime, timedelta, timezone

import schemathesis
from hypothesis import strategies as st

# expiresAt: an RFC 3339 timestamp in the future (from one hour to ten years ahead).
schemathesis.openapi.format(
    "date-time",
    st.integers(min_value=3600, max_value=10 * 365 * 86400).map(
        lambda seconds: (datetime.now(timezone.utc) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ),
)
