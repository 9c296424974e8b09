"""Pure `nn.Module`s of the matting network; no I/O, no weights loading."""

from .network import MattingNetwork

__all__ = ["MattingNetwork"]
