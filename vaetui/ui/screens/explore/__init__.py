"""The explore screens, one a module; each shows the picture its headless twin writes (vaetui.pictures.figures)."""

from vaetui.ui.screens.explore.base import ExploreScreen
from vaetui.ui.screens.explore.compare import CompareScreen
from vaetui.ui.screens.explore.data import DataScreen
from vaetui.ui.screens.explore.generate import GenerateScreen
from vaetui.ui.screens.explore.interpolate import InterpolateScreen
from vaetui.ui.screens.explore.latent import LatentScreen
from vaetui.ui.screens.explore.lockstep import LockstepScreen
from vaetui.ui.screens.explore.reconstruct import ReconstructScreen

__all__ = ["ExploreScreen", "CompareScreen", "DataScreen", "GenerateScreen", "InterpolateScreen",
           "LatentScreen", "LockstepScreen", "ReconstructScreen"]
