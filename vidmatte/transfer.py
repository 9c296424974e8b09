"""Host <-> device copies of frames: pinned staging and asynchronous copies on CUDA.

From pageable (ordinary) memory a CUDA copy runs through a driver bounce buffer and blocks
the calling thread for its whole length; from page-locked ("pinned") memory it is a DMA
transfer that the thread only queues. Frames cross as uint8 (a quarter of float32's bytes)
and are converted on the device. On other devices these are plain copies.

Pinned blocks come from PyTorch's caching host allocator, which hands a block out again
only after the copies queued on it have finished, so a staging buffer is never overwritten
while the GPU still reads it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def to_device(array: np.ndarray, device: torch.device) -> Tensor:
    """`array` as a tensor on `device` (same dtype and shape); asynchronous on CUDA."""
    host = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cuda":
        # pin_memory() copies into a page-locked block, so the upload below is a queued DMA
        # and the calling thread goes on at once
        return host.pin_memory().to(device, non_blocking=True)
    return host.to(device)


def to_host(tensor: Tensor) -> np.ndarray:
    """`tensor` as a C-ordered numpy array in host memory.

    On CUDA the download goes into a pinned block, and an event recorded right after it is
    waited for rather than the whole device: work that other threads queue after it does not
    hold up this thread.
    """
    tensor = tensor.detach().contiguous()  # reordered on the device, before the copy
    if tensor.device.type != "cuda":
        return tensor.cpu().numpy()
    host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    host.copy_(tensor, non_blocking=True)
    done = torch.cuda.Event()
    done.record(torch.cuda.current_stream(tensor.device))
    done.synchronize()
    return host.numpy()
