"""internvid: the InternVid video-text data pipeline and the ViCLIP model."""

__version__ = "0.1.0"
