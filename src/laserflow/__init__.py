"""laserflow: the LASER (layer-selective rank reduction) reproduction workflow's library."""

__version__ = "0.1.0"
