import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run many small ops: one thread is faster and immune to a busy, shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
