"""Caption cleaning: captioner and LM artefacts, caption language, similarity, near-duplicates."""

from __future__ import annotations

import pytest

from internvid.caption.clean import (
    caption_language,
    caption_similarity,
    clean_caption,
    collapse_consecutive,
)

# (raw captioner or LM output, cleaned caption), grouped by artefact class.
CASES = [
    # BLIP's hallucinated "arafed" family, the article agreeing with the next word.
    ("there is arafed man riding a horse on the beach", "A man riding a horse on the beach."),
    ("arafed view of a city at night", "View of a city at night."),
    ("an arafed man sitting on a bench", "A man sitting on a bench."),
    ("there is an arrafed elephant in the water", "An elephant in the water."),
    ("a arafed hour glass on a table", "An hour glass on a table."),
    ("a man in arafed shirt holding an umbrella", "A man in a shirt holding an umbrella."),
    ("there are araffed people standing in a room", "People standing in a room."),
    ("the araffe building is very tall", "The building is very tall."),
    ("arafly dressed woman walking down the street", "Dressed woman walking down the street."),
    ("arafe image of a man in a suit", "A man in a suit."),
    ("arafed", ""),
    # Leading filler and BLIP prompt echoes; content phrases stay.
    ("there is a man that is standing in front of a car", "A man standing in front of a car."),
    ("there are two dogs playing in the snow", "Two dogs playing in the snow."),
    ("this is a man cooking in a kitchen", "A man cooking in a kitchen."),
    ("a picture of a dog playing in the grass", "A dog playing in the grass."),
    ("a photography of a woman holding a cup", "A woman holding a cup."),
    ("an image of a mountain with snow on top", "A mountain with snow on top."),
    ("a photo of a red car parked on the street", "A red car parked on the street."),
    (
        "The image shows a man riding a bicycle down a street.",
        "A man riding a bicycle down a street.",
    ),
    ("In this video, a woman is dancing on a stage.", "A woman is dancing on a stage."),
    ("a close up of a cat sitting on a couch", "A close up of a cat sitting on a couch."),
    ("a painting of a boat on the water", "A painting of a boat on the water."),
    ("there is", ""),
    # LM preambles, labels, wrapping quotes, markdown and trailing chatter.
    (
        'Sure! Here is a caption: "A man rides a horse along the beach."',
        "A man rides a horse along the beach.",
    ),
    (
        "Sure, here's a one-sentence caption for the video:\n\n"
        "**A man paints a wall in a bright room.**\n\nI hope this helps!",
        "A man paints a wall in a bright room.",
    ),
    (
        "Certainly! Here's a concise summary of the frame captions:\n\n"
        "A chef prepares pasta in a restaurant kitchen.",
        "A chef prepares pasta in a restaurant kitchen.",
    ),
    ("Caption: a chef chops vegetables in a kitchen", "A chef chops vegetables in a kitchen."),
    ("Summary: Two kids play football in a park.", "Two kids play football in a park."),
    ('"a dog running in the snow"', "A dog running in the snow."),
    ("'a man's dog running on a beach'", "A man's dog running on a beach."),
    ("1. A man fixes a bike in a garage.", "A man fixes a bike in a garage."),
    ("ASSISTANT: a dog chasing a ball", "A dog chasing a ball."),
    # Repeated words, repeated phrases, looping captioners and per-frame tag runs.
    ("a a man walking down the street", "A man walking down the street."),
    ("the the dog is sleeping on the couch", "The dog is sleeping on the couch."),
    ("a man riding a horse a man riding a horse", "A man riding a horse."),
    ("a man riding a horse, a man riding a horse.", "A man riding a horse."),
    ("a man standing in a room with a man standing in a room", "A man standing in a room."),
    ("a woman in a white shirt and a white shirt", "A woman in a white shirt."),
    (
        "a man sitting on a couch with a laptop and a laptop and a laptop",
        "A man sitting on a couch with a laptop.",
    ),
    ("a man riding a horse a man riding a horse a man riding a", "A man riding a horse."),
    (
        "a person walking a dog in the park. a person walking a dog in the park. "
        "a person walking a dog in the park.",
        "A person walking a dog in the park.",
    ),
    ("man, man, man, woman, room, room", "Man, woman, room."),
    ("man | room | table | man | chair", "Man, room, table, chair."),
    ("over and over again a man jumps", "Over and over again a man jumps."),
    ("a man and a woman walking side by side", "A man and a woman walking side by side."),
    # Captions cut by max_new_tokens; trailing punctuation.
    ("a man standing in front of a", "A man standing."),
    ("a woman sitting at a table with a", "A woman sitting at a table."),
    ("a group of people walking on the", "A group of people walking."),
    (
        "a woman is taking a selfie in front of a mirror in front of",
        "A woman is taking a selfie in front of a mirror.",
    ),
    ("a man sitting next to a", "A man sitting."),
    ("a man riding a horse...", "A man riding a horse."),
    ("a boat on a lake at sunset!!", "A boat on a lake at sunset."),
    ("a plate of food with a fork and a knife", "A plate of food with a fork and a knife."),
    ('a sign that says "stop"', 'A sign that says "stop".'),
    # Special tokens, wordpieces, BERT-decoding spaces, newlines.
    (
        "a man riding a skate ##board down a hill</s><pad><pad>",
        "A man riding a skateboard down a hill.",
    ),
    ("<unk> a man in a t - shirt playing guitar [SEP]", "A man in a t-shirt playing guitar."),
    ("a man ' s hand holding a phone", "A man's hand holding a phone."),
    (
        "a man walking down the street  ,  talking on a phone",
        "A man walking down the street, talking on a phone.",
    ),
    ("a cat sitting on a window sill.\n\n", "A cat sitting on a window sill."),
    ("<|im_start|>assistant\nA man plays the piano.<|im_end|>", "A man plays the piano."),
    (
        "<|start_header_id|>assistant<|end_header_id|>\n\nA woman jogs along a river.<|eot_id|>",
        "A woman jogs along a river.",
    ),
    ("a dog<0x0A>running on\tthe grass <extra_id_0>", "A dog running on the grass."),
    ("<unk></s>", ""),
    ("", ""),
    ("   \n ", ""),
    # Case.
    ("A MAN RIDING A HORSE ON THE BEACH", "A man riding a horse on the beach."),
    ("a man wearing a NASA t-shirt", "A man wearing a NASA t-shirt."),
    ("iPhone lying on a wooden desk", "IPhone lying on a wooden desk."),
    ("一个男人在海滩上骑马", "一个男人在海滩上骑马。"),
]


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_clean_caption(raw: str, expected: str) -> None:
    assert clean_caption(raw) == expected


@pytest.mark.parametrize("raw", [raw for raw, _ in CASES])
def test_clean_caption_is_idempotent(raw: str) -> None:
    once = clean_caption(raw)
    assert clean_caption(once) == once


def test_clean_caption_output_shape() -> None:
    for raw, _ in CASES:
        cleaned = clean_caption(raw)
        if cleaned:
            assert cleaned == cleaned.strip()
            assert "  " not in cleaned
            assert cleaned.endswith((".", '".', "。"))
            assert not cleaned.endswith("..")


def test_clean_caption_rejects_non_strings() -> None:
    with pytest.raises(TypeError):
        clean_caption(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("A man rides a horse along the beach at sunset.", "en"),
        ("Ein Mann reitet bei Sonnenuntergang am Strand entlang.", "de"),
        ("Un homme monte à cheval sur la plage au coucher du soleil.", "fr"),
        ("Un hombre monta a caballo por la playa al atardecer.", "es"),
        ("一个男人在日落时分沿着海滩骑马。", "zh"),
        ("男人骑马", "zh"),
        ("", "und"),
        ("   ", "und"),
        ("horse", "und"),
        ("123 456 !!", "und"),
    ],
)
def test_caption_language(text: str, lang: str) -> None:
    assert caption_language(text) == lang


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("A man rides a horse.", "a man rides a horse", 1.0),
        ("there is a dog", "A dog.", 1.0),  # compared after cleaning
        ("A red car.", "A blue car.", 0.5),  # {a, car} of {a, red, blue, car}
        ("A cat.", "Two dogs.", 0.0),
        ("", "A dog.", 0.0),
        ("", "", 0.0),
    ],
)
def test_caption_similarity(a: str, b: str, expected: float) -> None:
    assert caption_similarity(a, b) == pytest.approx(expected)
    assert caption_similarity(b, a) == pytest.approx(expected)


def test_caption_similarity_is_in_unit_interval() -> None:
    captions = [raw for raw, _ in CASES[:20]]
    for a in captions:
        for b in captions:
            assert 0.0 <= caption_similarity(a, b) <= 1.0


def test_collapse_consecutive_near_duplicates() -> None:
    frames = [
        "a man riding a horse on the beach",
        "a man riding a horse on a beach",  # near-duplicate of the last kept one
        "there is a man riding a horse on the beach",  # same after cleaning
        "a dog running in the snow",
        "a dog running in the snow",
    ]
    assert collapse_consecutive(frames) == [0, 3]


def test_collapse_consecutive_keeps_non_consecutive_repeats() -> None:
    frames = ["a cat on a sofa", "a cat on a sofa", "a car on a road", "a cat on a sofa"]
    assert collapse_consecutive(frames) == [0, 2, 3]


def test_collapse_consecutive_drops_empty_captions() -> None:
    frames = ["", "<unk></s>", "a boat on a lake", "   ", "arafed", "a bird in the sky"]
    assert collapse_consecutive(frames) == [2, 5]
    assert collapse_consecutive([]) == []
    assert collapse_consecutive(["", "</s>"]) == []


def test_collapse_consecutive_compares_with_last_kept_not_previous() -> None:
    # Per-frame tags: each step is small, but the drift from the last kept caption adds up.
    frames = [
        "man, dog, park, bench, tree",
        "man, dog, park, bench, tree, grass",
        "man, dog, park, bench, tree, grass, sun",
        "man, dog, park, bench, tree, grass, sun, bird",
    ]
    # 5/6 >= 0.8 drops 1; 5/7 < 0.8 keeps 2; 7/8 >= 0.8 drops 3.
    assert collapse_consecutive(frames) == [0, 2]


def test_collapse_consecutive_threshold() -> None:
    frames = ["a red car", "a blue car"]  # similarity 0.5
    assert collapse_consecutive(frames, min_similarity=0.5) == [0]  # >= threshold: dropped
    assert collapse_consecutive(frames, min_similarity=0.51) == [0, 1]
    assert collapse_consecutive(["a cat", "a cat"], min_similarity=1.0) == [0]
    assert collapse_consecutive(["a cat", "a dog", "a cow"], min_similarity=0.0) == [0]
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError):
            collapse_consecutive(frames, min_similarity=bad)
