"""The one image resize of the project (prepare's, and imagefolder's for archives of mixed sizes),
so an image gets the same pixels whichever path resized it."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def resize_uint8(images: np.ndarray, size: int | None, chunk: int = 4096) -> torch.Tensor:
    """Antialiased bilinear resize of uint8 N,C,H,W to size x size (None keeps the native size)."""
    x = torch.from_numpy(np.ascontiguousarray(images))
    if size is None or (x.shape[-1] == size and x.shape[-2] == size):
        return x.contiguous()
    out = [F.interpolate(x[i:i + chunk].float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
           .round_().clamp_(0, 255).to(torch.uint8) for i in range(0, len(x), chunk)]
    return torch.cat(out).contiguous()
