"""Schemathesis hooks for the Auth API's own string formats (loaded by scripts/openapi-tests.sh).

The OpenAPI document states the rules these formats stand for in words; JSON Schema cannot
(Unicode letter classes, "in the future", a URL the service can parse). These strategies
generate values that keep the rules, so that schema-valid requests are valid to the service.
Schemathesis cannot negate a format it only knows by a strategy, so negative tests of these
fields vary their type and length instead.
"""

from datetime import datetime, timedelta, timezone

import schemathesis
from hypothesis import strategies as st

# A new password: an uppercase letter, a lowercase letter and a digit, 10 to 43 characters
# (the rule is 8 to 128), and, being random, not one of the common passwords.
schemathesis.openapi.format(
    "password",
    st.from_regex(r"\A[A-Z][a-z][0-9][A-Za-z0-9!#%&*+.:;=?@^_~-]{7,40}\Z"),
)

# expiresAt: an RFC 3339 timestamp in the future (from one hour to ten years ahead).
schemathesis.openapi.format(
    "date-time",
    st.integers(min_value=3600, max_value=10 * 365 * 86400).map(
        lambda seconds: (datetime.now(timezone.utc) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ),
)

# foundryUrl: an http(s) URL with a host.
schemathesis.openapi.format(
    "http-url",
    st.from_regex(
        r"\Ahttps?://[a-wyz][a-z0-9]{0,20}(\.[a-z]{2,8}){0,2}(:[1-9][0-9]{1,3})?(/[A-Za-z0-9._~-]{0,16}){0,3}\Z"
    ),
)
