import os
import uuid

import pytest


@pytest.fixture
def base_url() -> str:
    url = os.environ.get("TENFOLD_URL")
    if not url:
        pytest.fail("TENFOLD_URL is not set; run these tests through scripts/test-clients")
    return url.rstrip("/")


@pytest.fixture
def fresh_email() -> str:
    return f"py-{uuid.uuid4().hex}@example.com"
