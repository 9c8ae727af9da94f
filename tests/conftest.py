import pytest
from helpers import CUDA_AVAILABLE


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="needs a CUDA device and a CUDA build of fusedgan")
    for item in items:
        if "cuda" in item.keywords and not CUDA_AVAILABLE:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def digit_classifier_cache(tmp_path_factory):
    """The image metrics' classifier is trained once per test session, into a cache of its own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FUSEDGAN_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield
