import pytest

from tests.integration.sandbox import sandbox  # noqa: F401 - fixture

pytestmark = pytest.mark.integration
