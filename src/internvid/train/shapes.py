"""The synthetic moving-shapes task (only the frames' order tells the direction) and its scores."""

from __future__ import annotations

import numpy as np
import torch

from internvid.models.preprocess import IMAGENET_MEAN, IMAGENET_STD
from internvid.models.viclip import ViCLIP

COLOURS = {  # name -> RGB in [0, 1]
    "red": (0.9, 0.1, 0.1),
    "green": (0.1, 0.8, 0.1),
    "blue": (0.1, 0.2, 0.9),
    "yellow": (0.9, 0.9, 0.1),
}
SHAPES = ("circle", "square", "triangle")
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}  # (dx, dy)
N_COMBOS = len(COLOURS) * len(SHAPES) * len(DIRECTIONS)  # 48 distinct captions


class ShapesDataset(torch.utils.data.Dataset):
    """A coloured shape moving left/right/up/down across a plain background, wrapping around at
    the edges (a torus), from a uniformly random start; deterministic per index.

    Every single frame therefore shows the shape at a uniformly random place whatever the
    direction: only the order of the frames tells the direction (an image model cannot).
    Item: ((T, 3, S, S) ImageNet-normalised frames, "a red circle moving left").
    `combos`: draw the (colour, shape, direction) of item i as the i-th of all 48 combinations
    (mod 48) instead of at random: a held-out set with each caption once.
    """

    def __init__(
        self, num_samples: int, frames: int = 4, size: int = 32, seed: int = 0, combos: bool = False
    ) -> None:
        self.num_samples, self.frames, self.size, self.seed = num_samples, frames, size, seed
        self.combos = combos
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def __len__(self) -> int:
        return self.num_samples

    def labels(self, index: int) -> tuple[str, str, str]:
        """(colour, shape, direction) of item `index`."""
        if self.combos:
            c, rest = divmod(index % N_COMBOS, len(SHAPES) * len(DIRECTIONS))
            s, d = divmod(rest, len(DIRECTIONS))
            return list(COLOURS)[c], SHAPES[s], list(DIRECTIONS)[d]
        rng = np.random.default_rng([self.seed, index, 1])
        return (
            list(COLOURS)[rng.integers(len(COLOURS))],
            SHAPES[rng.integers(len(SHAPES))],
            list(DIRECTIONS)[rng.integers(len(DIRECTIONS))],
        )

    def caption(self, index: int) -> str:
        """The caption of item `index`, without drawing it."""
        return "a {} {} moving {}".format(*self.labels(index))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        if not 0 <= index < self.num_samples:
            raise IndexError(index)
        colour, shape, direction = self.labels(index)
        rng = np.random.default_rng([self.seed, index, 2])
        s, t = self.size, self.frames
        r = max(2, s // 8)  # half size of the shape
        speed = s / (2 * max(t, 2))  # pixels per frame: half the frame over the clip
        dx, dy = DIRECTIONS[direction]
        start = rng.uniform(0, s, size=2)  # (x, y) of the centre, anywhere
        background = rng.uniform(0.3, 0.6) * np.ones(3)
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float64)  # (S, S)
        video = np.empty((t, s, s, 3), dtype=np.float32)  # (T, S, S, 3)
        for i in range(t):
            cx, cy = start[0] + dx * speed * i, start[1] + dy * speed * i
            ox = (xx - cx + s / 2) % s - s / 2  # offsets from the centre on the torus
            oy = (yy - cy + s / 2) % s - s / 2
            if shape == "circle":
                inside = ox**2 + oy**2 <= r * r
            elif shape == "square":
                inside = (np.abs(ox) <= r) & (np.abs(oy) <= r)
            else:  # point-up triangle
                inside = (oy >= -r) & (oy <= r) & (np.abs(ox) <= (oy + r) / 2)
            video[i] = background
            video[i][inside] = COLOURS[colour]
        frames = torch.from_numpy(video).permute(0, 3, 1, 2)  # (T, 3, S, S)
        return (frames - self.mean) / self.std, self.caption(index)


@torch.no_grad()
def evaluate_shapes(
    model: ViCLIP, frames: int, size: int, seed: int = 10_000, sets: int = 4
) -> dict[str, float]:
    """Held-out retrieval on the shapes task: `sets` fresh sets of the 48 captions, a clip each.

    t2v_r1: percent of captions whose own clip ranks first among the 48 (chance 2.1%);
    direction_acc: percent of clips whose caption beats the three with the same colour and shape
    but another direction (chance 25%; an image model cannot beat chance). Ties count against
    the model (a collapsed model scores 0, not 100).
    """
    was_training = model.training
    model.eval()
    texts = [ShapesDataset(N_COMBOS, combos=True).caption(i) for i in range(N_COMBOS)]
    t = model.encode_text(texts, normalize=True).float()  # (48, D)
    hits, dir_hits = 0, 0
    for k in range(sets):
        data = ShapesDataset(N_COMBOS, frames, size, seed=seed + k, combos=True)
        videos = torch.stack([data[i][0] for i in range(N_COMBOS)]).to(model.device)
        v = model.encode_video(videos, normalize=True).float()  # (48, D)
        sims = t @ v.T  # (48 texts, 48 videos); text i belongs to video i
        own = sims.diagonal()
        hits += int(((sims >= own[:, None]).sum(1) == 1).sum())
        per_video = sims.T  # (48 videos, 48 texts)
        groups = per_video.reshape(N_COMBOS, N_COMBOS // len(DIRECTIONS), len(DIRECTIONS))
        idx = torch.arange(N_COMBOS)
        mine = groups[idx, idx // len(DIRECTIONS)]  # (48, 4): same colour + shape
        gt = mine[idx, idx % len(DIRECTIONS)]
        dir_hits += int(((mine >= gt[:, None]).sum(1) == 1).sum())
    model.train(was_training)
    n = sets * N_COMBOS
    return {"t2v_r1": 100.0 * hits / n, "direction_acc": 100.0 * dir_hits / n, "clips": float(n)}
