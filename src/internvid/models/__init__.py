"""ViCLIP, InternVid's video CLIP: model, official-checkpoint loading, tokenizer, preprocessing."""

from __future__ import annotations

from internvid.models.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    frames_to_tensor,
    preprocess_clip,
    sample_indices,
)
from internvid.models.tokenizer import ViCLIPTokenizer, get_tokenizer, tokenize
from internvid.models.viclip import (
    CheckpointError,
    ViCLIP,
    ViCLIPConfig,
    check_state_dict,
    count_parameters,
    infer_config,
    load_viclip,
    read_state_dict,
    save_official,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "CheckpointError",
    "ViCLIP",
    "ViCLIPConfig",
    "ViCLIPTokenizer",
    "check_state_dict",
    "count_parameters",
    "frames_to_tensor",
    "get_tokenizer",
    "infer_config",
    "load_viclip",
    "preprocess_clip",
    "read_state_dict",
    "sample_indices",
    "save_official",
    "tokenize",
]
