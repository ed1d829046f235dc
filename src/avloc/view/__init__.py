"""`avloc view`: a static HTML report of a localization output folder (avloc.view.build)."""

from avloc.view.build import build_view

__all__ = ["build_view"]
