"""The captioning prompts of chat vision-language models, in one place (shown in docs/captioning.md)."""

from __future__ import annotations

# A frame caption (the fine scale, and the coarse scale's middle frame) by a chat VLM. BLIP-style
# captioners read no prompt.
FRAME_PROMPT = "Describe this image in one short sentence."
# The coarse scale read as a video: `{n}` frames of the clip in temporal order, one request.
VIDEO_PROMPT = (
    "These are {n} frames of one video clip, in temporal order. Describe the clip in one "
    "English sentence of 10 to 25 words: who or what is in it and what happens, in order. "
    "Answer with the sentence only."
)


def coarse_prompt(frames: int) -> str:
    """The prompt of a coarse-scale request over `frames` frames."""
    return FRAME_PROMPT if frames <= 1 else VIDEO_PROMPT.format(n=frames)
