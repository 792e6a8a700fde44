#!/usr/bin/env python3
"""Distinct request paths for the benchmarks, one per line, the same on every run.

    bench/queries.py search 30000 [CONTENT_DIR]   searches made of readers' words
    bench/queries.py simulator 30000              simulator questions (valid parameters)

Searches: one to four words drawn from the guides' own vocabulary (Markdown bodies, titles and
keywords, plus the synonym lexicon), about a third with a typo (accents dropped, a letter
deleted, doubled, replaced by its keyboard neighbour, or two neighbours swapped), a few with
a short French function word. Simulator: videos, music and images over their ranges of
durations, quantities, plans, resolutions and formats; every one answers 200.
"""
import random
import re
import sys
import unicodedata
from pathlib import Path
from urllib.parse import quote

SEED = 20261204
FUNCTION_WORDS = ["de", "la", "le", "les", "mon", "ma", "mes", "un", "une", "comment", "pourquoi",
                  "pour", "avec", "sans", "est", "quand"]
NEIGHBOURS = dict(zip("azertyuiopqsdfghjklmwxcvbn", "zeartuyoipsqfdhgkjmlxwvcnb"))


def vocabulary(content: Path) -> list[str]:
    words = set()
    for path in sorted(content.glob("*.md")) + [content / "synonymes.toml"]:
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets are not words readers type
        for word in re.findall(r"[^\W\d_]{3,}", text.lower()):
            words.add(word)
    return sorted(words)


def strip_accents(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")


def typo(rng: random.Random, word: str) -> str:
    kind = rng.randrange(5)
    i = rng.randrange(len(word))
    if kind == 0:
        return strip_accents(word)
    if kind == 1 and len(word) > 3:
        return word[:i] + word[i + 1:]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    if kind == 3:
        return word[:i] + NEIGHBOURS.get(word[i], word[i]) + word[i + 1:]
    if len(word) > 2 and i < len(word) - 1:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return strip_accents(word)


def searches(n: int, content: Path) -> list[str]:
    rng = random.Random(SEED)
    words = vocabulary(content)
    seen, out = set(), []
    while len(out) < n:
        query = []
        for _ in range(rng.choice([1, 1, 2, 2, 2, 3, 3, 4])):
            word = rng.choice(words)
            query.append(typo(rng, word) if rng.random() < 0.3 else word)
        if rng.random() < 0.2:
            query.insert(rng.randrange(len(query) + 1), rng.choice(FUNCTION_WORDS))
        text = " ".join(query)
        if text not in seen:
            seen.add(text)
            out.append("/aide/recherche?q=" + quote(text))
    return out


def simulator(n: int) -> list[str]:
    combos = []
    for plan in ["eglise", "reseau"]:
        for resolution in ["hd", "4k"]:
            for duree in range(5, 16):
                for quantite in range(1, 501):
                    combos.append(f"type=video&duree={duree}&quantite={quantite}&plan={plan}&resolution={resolution}")
        for duree in range(30, 91):
            for quantite in range(1, 101):
                combos.append(f"type=musique&duree={duree}&quantite={quantite}&plan={plan}")
        for quantite in range(1, 501):
            combos.append(f"type=image&quantite={quantite}&plan={plan}")
    random.Random(SEED).shuffle(combos)
    if n > len(combos):
        sys.exit(f"queries.py: only {len(combos)} distinct simulator questions")
    return ["/simulateur?" + c for c in combos[:n]]


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] not in ("search", "simulator"):
        sys.exit(__doc__)
    n = int(sys.argv[2])
    if sys.argv[1] == "search":
        content = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(__file__).resolve().parent.parent / "content"
        paths = searches(n, content)
    else:
        paths = simulator(n)
    sys.stdout.write("\n".join(paths) + "\n")


if __name__ == "__main__":
    main()
