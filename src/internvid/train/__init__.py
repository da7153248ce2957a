"""ViCLIP training: CLIP init, masked contrastive training on shards or shapes, exact resume."""

from internvid.config import TrainConfig
from internvid.train.batches import batch_indices, load_data, make_batch
from internvid.train.checkpoint import latest_checkpoint, save_checkpoint
from internvid.train.data import ShardClips, TrainClip, decode_at, expand_shards
from internvid.train.frames import write_frame_shards
from internvid.train.init import clip_to_viclip_state, init_from_clip, load_init
from internvid.train.loop import main, train
from internvid.train.loss import clip_loss, gather_with_grad
from internvid.train.optim import param_groups, warmup_cosine
from internvid.train.shapes import ShapesDataset, evaluate_shapes

__all__ = [
    "ShapesDataset",
    "ShardClips",
    "TrainClip",
    "TrainConfig",
    "batch_indices",
    "clip_loss",
    "clip_to_viclip_state",
    "decode_at",
    "evaluate_shapes",
    "expand_shards",
    "gather_with_grad",
    "init_from_clip",
    "latest_checkpoint",
    "load_data",
    "load_init",
    "main",
    "make_batch",
    "param_groups",
    "save_checkpoint",
    "train",
    "warmup_cosine",
    "write_frame_shards",
]
