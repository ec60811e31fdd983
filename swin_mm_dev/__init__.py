"""Development tools for the swin_mm repository, kept out of the library.

``import swin_mm`` gives the models and checkpoints; what only a developer of this
repository needs (checking configs against the published recipes) lives here, so the
library does not import it.
"""
