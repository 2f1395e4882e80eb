"""A small labelled-text dataset for the tests: 4 topics x 12 plain English sentences, written as a file.

The sentences are the tests' own (written here, not shipped with geomcheck), so the suites and
the CLI meet a file the way a user's dataset reaches them.
"""

from __future__ import annotations

import json
from pathlib import Path

TOPICS: dict[str, tuple[str, ...]] = {
    "cooking": (
        "Simmer the tomato sauce for twenty minutes and stir it now and then.",
        "Knead the bread dough until it feels smooth and elastic.",
        "Roast the vegetables in a hot oven with olive oil and salt.",
        "Whisk the eggs with sugar before folding in the flour.",
        "Season the soup with pepper, thyme and a little lemon juice.",
        "Let the steak rest for five minutes before you slice it.",
        "Chop the onions finely and fry them until golden.",
        "Boil the pasta in plenty of salted water.",
        "Add a spoon of butter to the risotto at the end.",
        "Marinate the chicken overnight in yoghurt and spices.",
        "Bake the cake until a skewer comes out clean.",
        "Grate some fresh ginger into the stir fry.",
    ),
    "football": (
        "The striker scored twice in the second half.",
        "Our goalkeeper saved a penalty in the last minute.",
        "The referee showed the defender a red card.",
        "The team won the league after a draw on the final day.",
        "The coach changed the formation at half time.",
        "A header from the corner kick levelled the match.",
        "The midfielder was transferred to a club in Spain.",
        "Fans sang in the stadium long after the final whistle.",
        "The winger crossed the ball and the captain volleyed it in.",
        "The cup final went to extra time and penalties.",
        "The club signed a young forward from the academy.",
        "He was offside when he put the ball into the net.",
    ),
    "astronomy": (
        "The telescope observed a distant galaxy with a bright core.",
        "Jupiter has dozens of moons orbiting the giant planet.",
        "A comet with a long tail passed close to the Sun.",
        "The astronomers measured the light from a dying star.",
        "A total solar eclipse darkened the sky at noon.",
        "The Milky Way contains hundreds of billions of stars.",
        "Saturn's rings are made of ice and rock.",
        "The probe sent back images of craters on Mars.",
        "A supernova can outshine an entire galaxy for weeks.",
        "Black holes bend the light that passes near them.",
        "The space station orbits the Earth every ninety minutes.",
        "Meteors streaked across the night sky during the shower.",
    ),
    "finance": (
        "The central bank raised interest rates by a quarter point.",
        "Shares of the company fell after weak quarterly earnings.",
        "Investors moved their savings into government bonds.",
        "Inflation rose faster than wages over the past year.",
        "The startup raised funding from venture capital firms.",
        "The stock market closed higher on strong jobs data.",
        "Mortgage payments went up when the loan rate reset.",
        "The bank reported record profits from trading.",
        "The currency weakened against the dollar this week.",
        "Pension funds diversified into property and equities.",
        "The budget deficit widened as tax revenue dropped.",
        "Analysts expect dividends to grow next year.",
    ),
}


def write_topics(path: Path, *, text: str = "text", label: str = "label") -> Path:
    """The 48 sentences as JSONL, one ``{text: …, label: …}`` object per line, topics interleaved."""
    rows = [{text: sentences[i], label: topic} for i in range(12) for topic, sentences in TOPICS.items()]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
