"""Matrix-free closed-form matting Laplacian and a preconditioned conjugate-gradient solve.

The matting Laplacian of Levin, Lischinski & Weiss (2008) is never built: following He, Sun &
Tang (2010) its product with an alpha vector is evaluated with box filters. For every window k
(one per pixel, radius `radius`, clipped at the picture border) the linear model p ~ a_k.I + b_k
is fitted with ridge-regularised least squares, and

    (L p)_i = n_i p_i - sum_{k containing i} (a_k . I_i + b_k),

n_i being the number of windows containing pixel i. It is torch float32 so it runs on CPU or
CUDA, except the window statistics that cancel badly (colour covariances, the colour-alpha cross
covariance), which are formed in float64 where the device has it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: Above this radius box sums use running sums (O(1) per pixel) instead of shifted adds.
_SHIFT_MAX_RADIUS = 6


def box_sum(x: Tensor, radius: int) -> Tensor:
    """Sum of `x` [N,C,H,W] over the (2r+1)^2 window around each pixel, clipped at the border."""
    if radius <= 0:
        return x
    if radius <= _SHIFT_MAX_RADIUS:
        # shifted adds are exact; running sums lose float32 precision on long rows, which matters
        # for the covariances of nearly flat windows
        return _shift_sum(_shift_sum(x, radius, -1), radius, -2)
    return _running_sum(_running_sum(x, radius, -1), radius, -2)


def box_mean(x: Tensor, radius: int) -> Tensor:
    """Mean of `x` [N,C,H,W] over the clipped window around each pixel."""
    ones = torch.ones((1, 1, *x.shape[-2:]), dtype=x.dtype, device=x.device)
    return box_sum(x, radius) / box_sum(ones, radius)


def _shift_sum(x: Tensor, r: int, dim: int) -> Tensor:
    n = x.shape[dim]
    pad = (r, r, 0, 0) if dim == -1 else (0, 0, r, r)
    padded = F.pad(x, pad)
    out = padded.narrow(dim, 0, n).clone()
    for d in range(1, 2 * r + 1):
        out += padded.narrow(dim, d, n)
    return out


def _running_sum(x: Tensor, r: int, dim: int) -> Tensor:
    n = x.shape[dim]
    c = x.cumsum(dim)
    k = min(r, n)  # window ends clipped at the last element
    upper = torch.cat((c.narrow(dim, k, n - k), c.narrow(dim, n - 1, 1).expand_as(c.narrow(dim, 0, k))), dim)
    k = min(r + 1, n)  # window starts before the first element: nothing to subtract
    lower = torch.cat((torch.zeros_like(c.narrow(dim, 0, k)), c.narrow(dim, 0, n - k)), dim)
    return upper - lower


# symmetric 3x3 stored as 6 channels: xx, xy, xz, yy, yz, zz
_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))


def _sym_matvec(m: Tensor, v: Tensor) -> Tensor:
    """m [N,6,H,W] symmetric 3x3 per pixel times v [N,3,H,W]."""
    xx, xy, xz, yy, yz, zz = m.unbind(1)
    x, y, z = v.unbind(1)
    return torch.stack((xx * x + xy * y + xz * z, xy * x + yy * y + yz * z, xz * x + yz * y + zz * z), 1)


def _sym_inverse(m: Tensor) -> Tensor:
    """Inverse of symmetric positive-definite 3x3 matrices [N,6,H,W] by cofactors."""
    a, b, c, d, e, f = m.unbind(1)  # [[a b c] [b d e] [c e f]]
    A = d * f - e * e
    B = c * e - b * f
    C = b * e - c * d
    D = a * f - c * c
    E = b * c - a * e
    Fc = a * d - b * b
    det = a * A + b * B + c * C
    return torch.stack((A, B, C, D, E, Fc), 1) / det.unsqueeze(1)


class MattingLaplacian:
    """The matting Laplacian of `image` [N,3,H,W] as an operator on alpha maps [N,1,H,W]."""

    def __init__(self, image: Tensor, radius: int = 1, eps: float = 1e-5) -> None:
        self.radius = radius
        wide = torch.float32 if image.device.type == "mps" else torch.float64
        img = image.to(wide)
        # centring on the picture's mean colour keeps E[II^T] - mu mu^T from cancelling badly
        img = img - img.mean(dim=(-2, -1), keepdim=True)
        ones = torch.ones((1, 1, *img.shape[-2:]), dtype=wide, device=img.device)
        count = box_sum(ones, radius)  # pixels per (clipped) window; also windows per pixel
        mu = box_sum(img, radius) / count
        products = torch.stack([img[:, i] * img[:, j] for i, j in _PAIRS], 1)
        cov = box_sum(products, radius) / count - torch.stack([mu[:, i] * mu[:, j] for i, j in _PAIRS], 1)
        cov[:, [0, 3, 5]] += eps / count  # Levin's eps/|w| ridge on the diagonal
        delta = _sym_inverse(cov)
        self._wide = wide
        self._count_wide, self._mu_wide, self._centred_wide = count, mu, img
        self._count = count.float()
        self._mu = mu.float()
        self._delta = delta.float()
        self._centred = img.float()
        # Jacobi diagonal: L_ii = sum_k [1 - (1 + (I_i - mu_k)^T D_k (I_i - mu_k)) / |w_k|]
        dmu = _sym_matvec(delta, mu)
        s_delta = box_sum(delta / count, radius)
        s_dmu = box_sum(dmu / count, radius)
        s_const = box_sum((1 + (mu * dmu).sum(1, keepdim=True)) / count, radius)
        quad = (img * _sym_matvec(s_delta, img)).sum(1, keepdim=True)
        diag = count - (s_const + quad - 2 * (img * s_dmu).sum(1, keepdim=True))
        self.diagonal = diag.float().clamp_min(1e-8)

    def __call__(self, p: Tensor) -> Tensor:
        r = self.radius
        # the window sums of I*p and p are formed in the wide type: in a flat window Delta is
        # ~|w|/eps, and float32 cancellation in E[Ip] - mu E[p] would be amplified into garbage
        wide = p.to(self._wide)
        sums = box_sum(torch.cat((wide, self._centred_wide * wide), 1), r) / self._count_wide
        mean_p = sums[:, :1]
        cov_ip = (sums[:, 1:] - self._mu_wide * mean_p).float()
        a = _sym_matvec(self._delta, cov_ip)
        b = mean_p.float() - (a * self._mu).sum(1, keepdim=True)
        fitted = box_sum(torch.cat((a, b), 1), r)
        fitted = (self._centred * fitted[:, :3]).sum(1, keepdim=True) + fitted[:, 3:]
        return self._count * p.float() - fitted


class BandOperator:
    """The matting Laplacian restricted to square tiles that cover the unknown band.

    Only tiles holding unknown pixels are kept, each with a halo of 2*radius pixels (what one
    product with L reads around a pixel), so time and memory grow with the band's area, not the
    picture's. Vectors live in the "interior" layout [T,1,S,S]; products are exact for the
    interior of every tile. Beyond the picture border the image and alpha are replicated and held
    fixed, so edges touching the border see a slightly different (still valid) Laplacian.
    """

    def __init__(self, image: Tensor, unknown: Tensor, *, radius: int = 1, eps: float = 1e-5, tile: int = 32) -> None:
        height, width = image.shape[-2:]
        self.shape = (height, width)
        self.tile = s = tile
        self.halo = h = 2 * radius
        rows, cols = -(-height // s), -(-width // s)
        self._pad = (h, cols * s - width + h, h, rows * s - height + h)  # left, right, top, bottom
        self._padded_width = pw = cols * s + 2 * h
        grid = F.pad(unknown.float()[None], (0, cols * s - width, 0, rows * s - height))
        active = F.max_pool2d(grid, s, s)[0, 0] > 0  # [rows, cols]: tiles holding unknown pixels
        ty, tx = active.nonzero(as_tuple=True)
        device = image.device
        ext = torch.arange(s + 2 * h, device=device)
        inner = torch.arange(s, device=device) + h
        oy, ox = (ty * s)[:, None, None], (tx * s)[:, None, None]
        self._ext_index = ((oy + ext[None, :, None]) * pw + ox + ext[None, None, :]).reshape(-1)
        self._int_index = ((oy + inner[None, :, None]) * pw + ox + inner[None, None, :]).reshape(-1)
        self.count = int(ty.numel())
        self.laplacian = MattingLaplacian(self._gather(image.float()), radius, eps)
        self.diagonal = self.interior(self.laplacian.diagonal)

    def _gather(self, canvas: Tensor, mode: str = "replicate") -> Tensor:
        """Ext tiles [T,C,E,E] of a full-size map [C,H,W], replicated (or zero) beyond the border."""
        c = canvas.shape[0]
        e = self.tile + 2 * self.halo
        flat = F.pad(canvas[None], self._pad, mode=mode)[0].reshape(c, -1)
        return flat[:, self._ext_index].reshape(c, self.count, e, e).transpose(0, 1)

    def interior(self, ext: Tensor) -> Tensor:
        h = self.halo
        return ext[..., h : h + self.tile, h : h + self.tile]

    def tiles(self, canvas: Tensor, mode: str = "replicate") -> Tensor:
        """Interior tiles [T,C,S,S] of a full-size map [C,H,W]."""
        return self.interior(self._gather(canvas, mode))

    def scatter(self, values: Tensor, canvas: Tensor) -> Tensor:
        """Write interior tiles [T,1,S,S] into a copy of the full-size map [1,H,W]."""
        height, width = self.shape
        padded = F.pad(canvas[None], self._pad, mode="replicate")[0].reshape(-1).clone()
        padded[self._int_index] = values.reshape(-1)
        h = self.halo
        return padded.reshape(1, -1, self._padded_width)[:, h : h + height, h : h + width]

    def apply_full(self, canvas: Tensor) -> Tensor:
        """L x at the tile interiors for a full-size map x [1,H,W]."""
        return self.interior(self.laplacian(self._gather(canvas)))

    def __call__(self, values: Tensor) -> Tensor:
        """L v at the tile interiors for v [T,1,S,S] that is zero outside the tiles."""
        e = self.tile + 2 * self.halo
        padded = torch.zeros(
            self._padded_width * (self._pad[2] + self._pad[3] + self.shape[0]), dtype=values.dtype, device=values.device
        )
        padded[self._int_index] = values.reshape(-1)
        return self.interior(self.laplacian(padded[self._ext_index].reshape(self.count, 1, e, e)))


def solve_alpha(
    operator: BandOperator,
    alpha: Tensor,
    unknown: Tensor,
    *,
    lambda_net: float = 0.0,
    iterations: int = 100,
    tol: float = 1e-3,
) -> Tensor:
    """Minimise p^T L p + lambda_net * |p - alpha|^2 over the `unknown` pixels.

    `alpha` [1,H,W] is the network's; pixels outside `unknown` [1,H,W] bool are hard constraints
    at its value, and the unknown ones start from it (a warm start, so a modest number of Jacobi-
    preconditioned CG iterations suffices). Stops when the preconditioned residual norm falls
    below `tol` times its initial value. Returns the full map, unknown pixels clamped to 0..1.
    """
    if operator.count == 0:
        return alpha
    alpha = alpha.float()
    mask = operator.tiles(unknown.float(), mode="constant")
    start_alpha = operator.tiles(alpha)
    x = start_alpha.clone()
    residual = -mask * operator.apply_full(alpha)  # lambda_net * (alpha - x) is 0 at the start
    precond = mask / (operator.diagonal + lambda_net)
    z = precond * residual
    d = z.clone()
    rz = (residual * z).sum()
    start = float(rz)
    for _ in range(iterations if start > 0 else 0):
        ad = mask * operator(d) + lambda_net * d
        curvature = (d * ad).sum()
        if not float(curvature) > 0:  # converged to rounding, or a non-finite value crept in
            break
        step = rz / curvature
        x += step * d
        residual -= step * ad
        z = precond * residual
        rz_new = (residual * z).sum()
        if float(rz_new) <= tol * tol * start:
            break
        d = z + (rz_new / rz.clamp_min(1e-30)) * d
        rz = rz_new
    x = torch.where(mask > 0, x.clamp(0, 1), start_alpha)
    return operator.scatter(x, alpha)
