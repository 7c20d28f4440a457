"""The test suite's own rules, the ones tests/conftest.py relies on."""

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_integration_test_file_is_marked_integration():
    # `pytest -m "not integration"` skips collecting tests/integration altogether (tests/conftest.py): a test
    # file there without the marker would silently leave the Docker-free suite instead of failing in it.
    unmarked = [path.name for path in sorted((TESTS / "integration").glob("test_*.py"))
                if "\npytestmark = pytest.mark.integration" not in path.read_text()]
    assert unmarked == [], f"add `pytestmark = pytest.mark.integration` to {unmarked}"
