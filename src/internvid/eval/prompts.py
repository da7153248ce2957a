"""Class prompts and caption text as the text tower gets them: the template sets, `pre_text`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

TEXT_NORMS = ("official", "raw")  # --text-norm: `pre_text` before tokenising (official), or not
PROMPT_AVERAGES = ("official", "renorm")  # --prompt-average: mean of prompt cosines / renormalised

# "official": the ViCLIP zero-shot classification prompts, `kinetics_templates_action_clip` of
# the official code (dataset/text_prompt.py, imported by dataset/caption_dataset.py): ActionCLIP's
# 16 text augmentations (Wang et al., 2021, utils/Text_Prompt.py), whose name it carries. The
# official file itself is not in the sources we could read; these are ActionCLIP's strings, of
# which SPEC quotes "a photo of action {}" and "A video of {}". Each prompt goes through
# `pre_text` (so case and punctuation do not matter) and the per-prompt cosines are averaged.
OFFICIAL_TEMPLATES: tuple[str, ...] = (
    "a photo of action {}",
    "a picture of action {}",
    "Human action of {}",
    "{}, an action",
    "{} this is an action",
    "{}, a video of action",
    "Playing action of {}",
    "{}",
    "Playing a kind of action, {}",
    "Doing a kind of action, {}",
    "Look, the human is {}",
    "Can you recognize the action of {}?",
    "Video classification of {}",
    "A video of {}",
    "The man is {}",
    "The woman is {}",
)

# Other prompt sets for Kinetics-style action classes.
# "kinetics": the 28 action prompts of the InternVideo family's zero-shot code (its
# `kinetics_templates`, starting "A photo of action {}.", "A video of action {}.", the prompt SPEC
# section 3 quotes), seen in InternVid-related public code; whether the ViCLIP release scripts
# used exactly this list is not verified here.
_ACTION_PROMPTS = (
    "A photo of action {}.",
    "A video of action {}.",
    "He or she is {}.",
    "A person is doing {}.",
    "Look, the human is {}.",
    "Human action of {}.",
    "Playing action of {}.",
    "Video classification of {}.",
    "Doing a kind of action, {}.",
    "Playing a kind of action, {}.",
    "Can you recognize the action of {}?",
    "{}, an action.",
    "{} this is an action.",
    "{}, a video of action.",
    "An action of {} is in the video.",
    "There is a person doing {} in the video.",
)
KINETICS_TEMPLATES: tuple[str, ...] = _ACTION_PROMPTS + tuple(
    f"A {medium} of a person {verb} {{}}."
    for medium in ("photo", "video", "example", "demonstration")
    for verb in ("doing", "performing", "practicing")
)
# "clip": CLIP's Kinetics-700 prompt list (Radford et al., 2021), 4 openings x 7 endings.
CLIP_KINETICS_TEMPLATES: tuple[str, ...] = tuple(
    f"{prefix} {body}."
    for prefix in ("a photo of", "a video of", "a example of", "a demonstration of")
    for body in (
        "{}",
        "a person {}",
        "a person using {}",
        "a person doing {}",
        "a person during {}",
        "a person performing {}",
        "a person practicing {}",
    )
)
SINGLE_TEMPLATES: tuple[str, ...] = ("a video of {}.",)  # the one-prompt baseline
TEMPLATE_SETS = {
    "official": OFFICIAL_TEMPLATES,
    "kinetics": KINETICS_TEMPLATES,
    "clip": CLIP_KINETICS_TEMPLATES,
    "single": SINGLE_TEMPLATES,
}


def normalise_texts(texts: Sequence[str], mode: str = "official") -> list[str]:
    """Texts as the text tower gets them: "official" through `pre_text` (lower-case, strip
    ,.'!?"()*#:;~, `-` and `/` to spaces, `<person>` to person, one space), "raw" unchanged."""
    if mode == "raw":
        return list(texts)
    if mode != "official":
        raise ValueError(f"unknown text normalisation {mode!r} (expected official or raw)")
    from internvid.models.text import pre_text

    return [pre_text(t) for t in texts]


def class_prompts(
    classnames: Sequence[str], templates: Sequence[str], text_norm: str = "official"
) -> list[str]:
    """The C x P prompts, class-major: each template filled with the class name, then (official)
    the whole prompt through `pre_text`, as the official `build_data_act_rec`."""
    return normalise_texts([t.format(c) for c in classnames for t in templates], text_norm)


def load_templates(spec: str) -> tuple[str, ...]:
    """A named template set (official, kinetics, clip, single) or a file of "{}" lines."""
    if spec in TEMPLATE_SETS:
        return TEMPLATE_SETS[spec]
    path = Path(spec)
    if not path.is_file():
        raise ValueError(
            f"--templates {spec!r}: neither a set ({', '.join(TEMPLATE_SETS)}) nor a file"
        )
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    templates = tuple(ln for ln in lines if ln)
    if not templates or any("{}" not in t for t in templates):
        raise ValueError(f"{spec}: templates must be non-empty lines containing '{{}}'")
    return templates
