"""What the client-regex guard (baas/safe_regex.py) costs, and what the patterns it accepts cost a backtracking engine.

1. Check time of hand-picked worst cases for the checker itself (long, many quantifiers, many alternatives).
2. Random patterns from a small grammar (quantifiers, classes, groups, alternation): for those accepted, the
   slowest Python `re` search (the engine of the embedded database) over adversarial texts such as
   "a" * 30 + "!". A catastrophic pattern takes seconds to years there. Accepted patterns anchored with `^`
   stay linear in the text; unanchored ones with an unbounded quantifier are tried at every position, so
   they can be quadratic in the text's length (the 3000-character subject shows it), as on MongoDB. Searches
   over --budget seconds are counted per kind, and the first few printed as SLOW.

    python benchmarks/regex_guard.py                    # 3000 random patterns, seed 1
    python benchmarks/regex_guard.py --patterns 20000 --seed 7 --budget 0.05
"""
from __future__ import annotations

import argparse
import random
import re
import signal
import string
import time

from baas.errors import Invalid
from baas.safe_regex import check_pattern

ATOMS = ["a", "b", ".", "[ab]", "\\w", "\\s", "x", "[^b]"]
QUANTIFIERS = ["", "", "*", "+", "?", "{1,3}", "*?"]
SUBJECTS = ["a" * 30 + "!", "ab" * 15 + "!", " a" * 15 + "!", "a" * 3000, "a b" * 10 + "\n!"]


def _random_pattern(rng: random.Random, depth: int = 0) -> str:
    parts = []
    for _ in range(rng.randint(1, 4)):
        if rng.random() < 0.25 and depth < 3:
            inner = _random_pattern(rng, depth + 1)
            if rng.random() < 0.4:
                inner += "|" + _random_pattern(rng, depth + 1)
            atom = f"({inner})"
        else:
            atom = rng.choice(ATOMS)
        parts.append(atom + rng.choice(QUANTIFIERS))
    body = "".join(parts)
    return f"^{body}$" if rng.random() < 0.5 else body + "!?c"


class _TooSlow(Exception):
    pass


def _alarm(*_):
    raise _TooSlow


def check_costs() -> None:
    letters = string.ascii_letters + string.digits
    cases = {
        "256 literals": "abcdefgh" * 32,
        "many optional parts": "a+" + "".join(f"{c}?" for c in letters[1:]),
        "50 nested groups": "(" * 50 + "a" + ")" * 50,
        "61 alternatives": "|".join(letters),
        "nested, unambiguous": "(?:\\.(?:-(?:_(?:,b+)+)+)+)+",
        "catastrophic": "^(a+)+$",
    }
    print("check time per pattern")
    for name, pattern in cases.items():
        start = time.perf_counter()
        rounds = 20
        for _ in range(rounds):
            try:
                check_pattern(pattern)
                verdict = "accepted"
            except Invalid:
                verdict = "refused"
        print(f"  {name:22s} {len(pattern):4d} chars  {1000 * (time.perf_counter() - start) / rounds:7.2f} ms  "
              f"{verdict}")


def accepted_match_costs(count: int, seed: int, budget: float) -> None:
    rng = random.Random(seed)
    signal.signal(signal.SIGALRM, _alarm)
    accepted = 0
    slow = {"anchored": 0, "unanchored": 0}
    worst = (0.0, "")
    for _ in range(count):
        pattern = _random_pattern(rng)
        try:
            check_pattern(pattern)
        except Invalid:
            continue
        accepted += 1
        compiled = re.compile(pattern)
        for subject in SUBJECTS:
            signal.setitimer(signal.ITIMER_REAL, budget)
            start = time.perf_counter()
            try:
                compiled.search(subject)
            except _TooSlow:
                kind = "anchored" if pattern.startswith("^") else "unanchored"
                slow[kind] += 1
                if slow[kind] <= 3:
                    print(f"  SLOW ({kind}) {pattern!r} on {subject[:12]!r}... ({len(subject)} chars)")
                break
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            elapsed = time.perf_counter() - start
            if elapsed > worst[0]:
                worst = (elapsed, pattern)
    print(f"random patterns: {count} generated, {accepted} accepted; over {budget}s: {slow['anchored']} anchored, "
          f"{slow['unanchored']} unanchored; slowest accepted search {1000 * worst[0]:.2f} ms for {worst[1]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patterns", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--budget", type=float, default=0.2, help="seconds one search may take")
    args = parser.parse_args()
    check_costs()
    accepted_match_costs(args.patterns, args.seed, args.budget)


if __name__ == "__main__":
    main()
