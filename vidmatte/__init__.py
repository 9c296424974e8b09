"""vidmatte: video matting with a recurrent network — clips in, clean temporally stable alpha out."""

from .errors import DeviceError, InputError, OutputError, VidmatteError, WeightsError
from .matter import EMPTY_STATE, Matte, Matter, RecurrentState, auto_downsample_ratio
from .weights import load_model

__version__ = "0.1.0"

__all__ = [
    "EMPTY_STATE", "Matte", "Matter", "RecurrentState", "auto_downsample_ratio", "load_model",
    "VidmatteError", "InputError", "OutputError", "WeightsError", "DeviceError", "__version__",
]
