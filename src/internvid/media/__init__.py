"""Video files: probing, ffmpeg, cutting, synthetic test videos."""
