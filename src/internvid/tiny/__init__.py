"""Random-weight stand-ins of every model, built offline in a second (`tiny:NAME` in the hub).

`captioners.py`: BLIP, BLIP-2 (OPT), T5, a chat LM and a Qwen2.5-VL chat VLM; `scorers.py`: a
CLIP and both aesthetic heads; `viclip.py`: a ViCLIPConfig.tiny() checkpoint. Each is saved and
loaded back exactly as the real model is (`from_pretrained`, `torch.load`), so the loading code
under test is the users'. Their outputs are noise: smoke runs and tests only.
"""

from __future__ import annotations

# The file written last into a tiny model folder: its presence marks the folder as complete.
MARKER = "tiny.json"
# Width of every tiny transformer (vision, Q-Former, text).
HIDDEN = 32
# Width of every feed-forward block.
FFN = 64
# Layers per tiny transformer stack.
LAYERS = 2
# Attention heads per layer.
HEADS = 2
# Side of the square images the tiny vision towers take, in pixels.
IMAGE_SIZE = 32
# Side of a vision patch, in pixels.
PATCH = 8
