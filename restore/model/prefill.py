"""A classical first guess for the hole: push-pull (pyramid) interpolation from the known pixels.

Why: the generator then only has to add what smooth interpolation cannot (texture, edges)
instead of also re-deriving each hole's colour. Small models trained on little compute
otherwise leave colour casts in holes, worst in flat dark or bright areas; with the
first guess the output starts from the surrounding colours. The fill is a few pooling
and upsampling ops in torch: batched, on any device, negligible next to the network.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def push_pull(image: torch.Tensor, known: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Fill the pixels where ``known`` is 0 from the ones where it is 1.

    ``image``: B x C x H x W; ``known``: B x 1 x H x W in [0, 1]. Known pixels come back
    unchanged; each unknown one gets the average of the known ones at the finest pyramid level
    where any exist nearby, blended smoothly across levels (bilinear).
    """
    dtype = image.dtype
    values, weights = [image.float() * known.float()], [known.float()]
    while min(values[-1].shape[-2:]) > 1:
        values.append(F.avg_pool2d(values[-1], 2, ceil_mode=True))
        weights.append(F.avg_pool2d(weights[-1], 2, ceil_mode=True))
    estimate = values[-1] / weights[-1].clamp(min=eps)
    for value, weight in zip(reversed(values[:-1]), reversed(weights[:-1]), strict=True):
        up = F.interpolate(estimate, size=value.shape[-2:], mode="bilinear", align_corners=False)
        confidence = weight.clamp(max=1.0)
        estimate = value / weight.clamp(min=eps) * confidence + up * (1 - confidence)
    return estimate.to(dtype)
