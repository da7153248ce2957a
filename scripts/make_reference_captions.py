"""Writes src/internvid/scores/data/reference_captions.txt: the fixed caption bank of viclip_sim_cal.

Deterministic (seeded): 700 captions from the Kinetics-700 action names (CC BY 4.0) in varied
phrasings, and 300 scene captions from the lists below, in the style of InternVid's captions.
Run from the repository root: `python scripts/make_reference_captions.py`.
"""

from __future__ import annotations

import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KINETICS = ROOT / "src/internvid/queries/data/kinetics700.txt"
OUT = ROOT / "src/internvid/scores/data/reference_captions.txt"
SEED = 20261204
SCENES = 300

ACTION_FORMS = (
    "a video of {a}",
    "a clip showing {a}",
    "footage of {a} {w}",
    "a close-up of {a}",
    "a wide shot of {a} {w}",
    "people {a} {w}",
    "a person {a}",
    "a short video of {a} {w}",
    "an amateur video of {a}",
    "a tutorial on {a}",
)
WHERE = (
    "outdoors",
    "indoors",
    "at night",
    "during the day",
    "in a small room",
    "in a large hall",
    "on a sunny day",
    "in the rain",
    "in a city",
    "in the countryside",
)
SHOTS = (
    "a close-up of",
    "an aerial view of",
    "a time-lapse of",
    "a slow-motion shot of",
    "a wide shot of",
    "a handheld shot of",
    "a static shot of",
    "a black and white clip of",
)
SUBJECTS = (
    "a busy street with cars and pedestrians",
    "waves crashing on a rocky shore",
    "a cat sleeping on a sofa",
    "a dog running across a field",
    "clouds moving over snowy mountains",
    "a crowded market",
    "a bowl of soup on a wooden table",
    "a news anchor talking in a studio",
    "a cartoon character dancing",
    "a video game character exploring a castle",
    "a slideshow of holiday photos",
    "text scrolling on a computer screen",
    "a forest with sunlight through the trees",
    "a train passing a station",
    "an airplane taking off",
    "a chef chopping vegetables",
    "children playing in a schoolyard",
    "a man giving a speech at a podium",
    "a woman reading a book by a window",
    "fireworks over a river",
    "a flower opening its petals",
    "a factory assembly line",
    "a boat sailing on a calm lake",
    "a highway at rush hour",
    "birds flying over a lake",
    "a band playing on a stage",
    "a lecture slide with diagrams",
    "a baby laughing in a high chair",
    "a horse grazing in a meadow",
    "a city skyline at sunset",
    "rain falling on a window",
    "a candle flickering in the dark",
    "a desert with sand dunes",
    "a waterfall in a jungle",
    "a person typing on a laptop",
    "hands kneading bread dough",
    "a car driving on a mountain road",
    "a group of friends having dinner",
    "an empty office at night",
    "a snowy village street",
)


def main() -> None:
    rng = random.Random(SEED)
    actions = [line.strip() for line in KINETICS.read_text().splitlines() if line.strip()]
    captions: list[str] = []
    for a in actions:
        a = a.replace(" (human)", "").replace("(", "").replace(")", "")
        form = rng.choice(ACTION_FORMS)
        captions.append(form.format(a=a, w=rng.choice(WHERE)))
    pairs = [(s, t) for s in SHOTS for t in SUBJECTS]
    for shot, subject in rng.sample(pairs, SCENES):
        captions.append(f"{shot} {subject}")
    if len(set(captions)) != len(captions):
        raise SystemExit("duplicate captions in the bank")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(captions) + "\n")
    print(f"{len(captions)} captions -> {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
