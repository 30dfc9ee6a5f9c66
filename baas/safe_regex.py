"""Client regular expressions that no backtracking engine can get stuck on.

Patterns a client sends (`$regex` in filters and access rules, `pattern` in collection schemas) run in engines
that backtrack: PCRE on MongoDB, Python's `re` inside the embedded database (one thread for every project) and
in jsonschema. A pattern such as `^(a+)+$` makes them try exponentially many ways to match, and a time limit
is not honoured everywhere, so such patterns are refused before they reach an engine.

The accepted syntax is the subset that means the same in PCRE, Python and RE2 (docs/data-api.md lists it).
On top of the syntax, three shapes are refused because they let a backtracking engine split the same text
in many ways, which is what makes matching slow:

- a repeated part that can match nothing, or that holds a quantifier able to eat the text the next
  repetition would start with: `(a+)+`, `(a*)*`, `(\\w+\\s?)+`;
- alternatives that can start with the same character inside a repeat (`(a|ab)*`), or too many such
  alternations in a row outside one (`(a|a)(a|a)(a|a)...`);
- two quantifiers in a row that can match the same characters, with nothing between them that only one
  of them could match: `a*a*`, `\\d+\\d+`, `.*x.*`.

The check works on the pattern's parse tree as Python's own parser builds it (the engine of the embedded
database), with character sets compared over a sample of characters.
"""
from __future__ import annotations

import re
import re._constants as C
import re._parser as sre_parse

from baas.errors import Invalid

MAX_LENGTH = 256
MAX_REPEAT_COUNT = 1000            # RE2's limit for {n,m}; PCRE's and Python's are higher
MAX_AMBIGUOUS_PATHS = 16           # product of overlapping alternatives outside repeats
OPTIONS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}
_SIMPLE_ESCAPES = set("dDwWsStnrf")
_REFUSED_GROUPS = {
    "=": "lookahead (?=...) is not supported",
    "!": "negative lookahead (?!...) is not supported",
    "<": "lookbehind (?<=...) and named groups (?<name>...) are not supported",
    ">": "atomic groups (?>...) are not supported",
    "P": "named groups and references (?P...) are not supported",
    "'": "named groups (?'name'...) are not supported",
    "(": "conditionals (?(...)...) are not supported",
    "#": "comments (?#...) are not supported",
    "|": "branch reset groups (?|...) are not supported",
}
# Characters set membership is decided on: ASCII and Latin-1, plus letters, digits and spaces of other
# scripts, plus every character the pattern names itself.
_SAMPLE = [chr(c) for c in range(0x250)] + list("\u0391\u03b1\u0416\u0436\u05d0\u0627\u0663\u0966\u4e2d"
                                                "\u3042\u2028\u2029\u3000\u200b\uff10\U0001f600")


class UnsafeRegex(Invalid):
    pass


def check_options(options, where: str = "filter") -> int:
    """Validate `$options` (each of i, m, s, x at most once); return the matching Python flags."""
    if not isinstance(options, str) or len(set(options)) != len(options) or not set(options) <= set(OPTIONS):
        raise UnsafeRegex(f"'$options' in the {where} takes the letters i, m, s and x, each at most once.",
                          errors={where: ["Invalid $options."]})
    flags = 0
    for letter in options:
        flags |= OPTIONS[letter]
    return flags


def check_pattern(pattern, options: str = "", *, what: str = "'$regex'", where: str = "filter",
                  max_length: int = MAX_LENGTH) -> str:
    """Return `pattern` when it is in the accepted subset and cannot backtrack catastrophically, else a 400
    saying why. `what` names the pattern in the message ("'$regex' on 'name'"), `where` the input it is in."""
    flags = check_options(options, where)

    def refuse(reason: str):
        raise UnsafeRegex(f"{what} in the {where} is refused: {reason}.", errors={where: [f"{what}: {reason}"]})

    if not isinstance(pattern, str):
        refuse("it must be a string")
    if len(pattern) > max_length:
        refuse(f"it is longer than {max_length} characters (patterns have at most {max_length})")
    marked = _check_syntax(pattern, refuse)
    try:
        re.compile(pattern, flags)
        tree = sre_parse.parse(marked, flags)
    except re.error as exc:
        refuse(f"it is not a valid pattern ({exc.msg} at position {exc.pos})")
    except (RecursionError, OverflowError):
        refuse("it is nested too deeply")
    _Checker(pattern, flags, refuse).check(list(tree))
    return pattern


def _check_syntax(pattern: str, refuse) -> str:
    """Check the characters and escapes of the portable subset, read the way every engine reads them.

    Return the pattern with an empty capturing group at the start of every alternative: Python's parser
    merges alternatives (`a|a` becomes `[a]`, `ab|ac` becomes `a[bc]`), which PCRE does not, and distinct
    groups keep the alternatives apart so that the check sees them as PCRE runs them.
    """
    i, n = 0, len(pattern)
    in_class = False
    class_start = 0
    marked = ["()"]
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                refuse("it ends with a lone backslash")
            d = pattern[i + 1]
            if d in _SIMPLE_ESCAPES or d in "bB" and not in_class:
                marked.append(pattern[i:i + 2])
                i += 2
                continue
            if d == "x":
                if not re.fullmatch(r"[0-9A-Fa-f]{2}", pattern[i + 2:i + 4]):
                    refuse("\\x takes exactly two hexadecimal digits")
                marked.append(pattern[i:i + 4])
                i += 4
                continue
            if d.isdigit() or d in "kg":
                refuse(f"backreferences and octal escapes (\\{d}) are not supported")
            if d.isascii() and not d.isalnum():
                marked.append(pattern[i:i + 2])
                i += 2
                continue
            refuse(f"the escape \\{d} is not supported")
        marked.append(c)
        if in_class:
            if c == "]" and i > class_start:
                in_class = False
            elif c == "[":
                refuse("'[' inside a character class must be escaped (POSIX classes such as [:alpha:] are not "
                       "supported)")
            elif pattern[i:i + 2] in ("&&", "--", "~~", "||"):
                refuse(f"'{pattern[i:i + 2]}' inside a character class must be escaped")
        elif c == "[":
            in_class = True
            class_start = i + 1
            if pattern[class_start:class_start + 1] == "^":
                class_start += 1
        elif c == "(" and pattern[i + 1:i + 2] == "?":
            kind = pattern[i + 2:i + 3]
            if kind != ":":
                refuse(_REFUSED_GROUPS.get(kind, "inline flags such as (?i) are not supported (use $options)"))
            marked.append("?:()")
            i += 3
            continue
        elif c in "(|":
            marked.append("()")
        i += 1
    return "".join(marked)


_REPEATS = (C.MAX_REPEAT, C.MIN_REPEAT)
_CATEGORIES = {
    C.CATEGORY_DIGIT: lambda ch: ch.isdigit(),
    C.CATEGORY_NOT_DIGIT: lambda ch: not ch.isdigit(),
    C.CATEGORY_SPACE: lambda ch: ch.isspace(),
    C.CATEGORY_NOT_SPACE: lambda ch: not ch.isspace(),
    C.CATEGORY_WORD: lambda ch: ch.isalnum() or ch == "_",
    C.CATEGORY_NOT_WORD: lambda ch: not (ch.isalnum() or ch == "_"),
}


class _Checker:
    def __init__(self, pattern: str, flags: int, refuse):
        self.flags = flags
        self.refuse = refuse
        self.sample = sorted(set(_SAMPLE) | set(pattern) | set(pattern.lower()) | set(pattern.upper()))
        self.ambiguous_paths = 1
        # The rules ask about the same nodes many times; nodes live as long as the tree, so ids are stable.
        self._chars: dict = {}
        self._first: dict = {}
        self._width: dict = {}

    # --- what a node can match ---------------------------------------------------------------------------

    def _matcher(self, op, av):
        fold = self.flags & re.IGNORECASE
        if op is C.LITERAL or op is C.NOT_LITERAL:
            target = chr(av)
            same = (lambda ch: ch.lower() == target.lower()) if fold else (lambda ch: ch == target)
            return same if op is C.LITERAL else (lambda ch: not same(ch))
        if op is C.ANY:
            return (lambda ch: True) if self.flags & re.DOTALL else (lambda ch: ch != "\n")
        if op is C.IN:
            tests, negate = [], False
            for item_op, item_av in av:
                if item_op is C.NEGATE:
                    negate = True
                elif item_op is C.LITERAL:
                    tests.append(self._matcher(C.LITERAL, item_av))
                elif item_op is C.RANGE:
                    low, high = item_av
                    tests.append(lambda ch, low=low, high=high: any(low <= ord(v) <= high
                                                                    for v in {ch, ch.lower(), ch.upper()})
                                 if fold else low <= ord(ch) <= high)
                elif item_op is C.CATEGORY:
                    tests.append(_CATEGORIES.get(item_av, lambda ch: True))
                else:
                    tests.append(lambda ch: True)
            return lambda ch: any(test(ch) for test in tests) != negate
        return lambda ch: False

    def _memo(self, cache: dict, compute, items):
        key = tuple(map(id, items))
        value = cache.get(key)
        if value is None:
            value = cache[key] = compute(items)
        return value

    def chars(self, items) -> frozenset:
        """Every sample character some position of `items` can consume."""
        return self._memo(self._chars, self._compute_chars, items)

    def first(self, items) -> frozenset:
        """The sample characters a match of `items` can start with."""
        return self._memo(self._first, self._compute_first, items)

    def width(self, items) -> tuple[int, float]:
        """The shortest and longest text `items` can match."""
        return self._memo(self._width, self._compute_width, items)

    def _compute_chars(self, items) -> frozenset:
        found = set()
        for op, av in items:
            if op in (C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN):
                test = self._matcher(op, av)
                found.update(ch for ch in self.sample if test(ch))
            elif op is C.SUBPATTERN:
                found |= self.chars(av[3])
            elif op is C.BRANCH:
                for alternative in av[1]:
                    found |= self.chars(alternative)
            elif op in _REPEATS or op is C.POSSESSIVE_REPEAT:
                found |= self.chars(av[2])
        return frozenset(found)

    def _compute_first(self, items) -> frozenset:
        found = set()
        for item in items:
            op, av = item
            if op is C.SUBPATTERN:
                found |= self.first(av[3])
            elif op is C.BRANCH:
                for alternative in av[1]:
                    found |= self.first(alternative)
            elif op in _REPEATS:
                found |= self.first(av[2])
            elif op is not C.AT:
                found |= self.chars([item])
            if self.width([item])[0] > 0:
                break
        return frozenset(found)

    def _compute_width(self, items) -> tuple[int, float]:
        low, high = 0, 0.0
        for op, av in items:
            if op in (C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN):
                low, high = low + 1, high + 1
            elif op is C.SUBPATTERN:
                a, b = self.width(av[3])
                low, high = low + a, high + b
            elif op is C.BRANCH:
                widths = [self.width(alternative) for alternative in av[1]]
                low, high = low + min(w[0] for w in widths), high + max(w[1] for w in widths)
            elif op in _REPEATS:
                a, b = self.width(av[2])
                count_high = float("inf") if av[1] is C.MAXREPEAT else av[1]
                low, high = low + a * av[0], high + (b * count_high if b else 0)
        return low, high

    def variable(self, item) -> bool:
        low, high = self.width([item])
        return low != high

    def variable_parts(self, items):
        """The quantifiers (and alternations of differing lengths) inside `items`, at any depth."""
        for item in items:
            op, av = item
            if op in _REPEATS and av[0] != av[1]:
                yield item
            if op is C.SUBPATTERN:
                yield from self.variable_parts(av[3])
            elif op is C.BRANCH:
                if self.variable(item):
                    yield item
                for alternative in av[1]:
                    yield from self.variable_parts(alternative)
            elif op in _REPEATS:
                yield from self.variable_parts(av[2])

    # --- the rules -----------------------------------------------------------------------------------------

    def check(self, items, repeated: bool = False) -> None:
        self._check_sequence(items)
        for item in items:
            op, av = item
            if op in (C.GROUPREF, C.GROUPREF_EXISTS):
                self.refuse("backreferences and conditionals are not supported")
            if op in (C.ASSERT, C.ASSERT_NOT):
                self.refuse("lookarounds are not supported")
            if op is C.ATOMIC_GROUP:
                self.refuse("atomic groups are not supported")
            if op is C.POSSESSIVE_REPEAT:
                self.refuse("possessive quantifiers (*+, ++, ?+) are not supported")
            if op is C.SUBPATTERN:
                if av[1] or av[2]:
                    self.refuse("inline flags are not supported (use $options)")
                self.check(av[3], repeated)
            elif op is C.BRANCH:
                self._check_branch(av[1], repeated)
                for alternative in av[1]:
                    self.check(alternative, repeated)
            elif op in _REPEATS:
                self._check_repeat(item)
                self.check(av[2], repeated or av[1] is C.MAXREPEAT or av[1] > 1)

    def _check_repeat(self, item) -> None:
        low, high, body = item[1]
        for count in (low, high):
            if count is not C.MAXREPEAT and count > MAX_REPEAT_COUNT:
                self.refuse(f"repeat counts go up to {MAX_REPEAT_COUNT}")
        if high is not C.MAXREPEAT and high <= 1:
            return
        body = list(body)
        if self.width(body)[0] == 0:
            self.refuse("a repeated part can match nothing, as in (a*)* or (a|)+")
        start = self.first(body)
        for inner in self.variable_parts(body):
            if self.chars([inner]) & start:
                self.refuse("a quantifier inside a repeated part can match what the next repetition starts "
                            "with, as in (a+)+ or (\\w+\\s?)+")

    def _check_branch(self, alternatives, repeated: bool) -> None:
        starts = [self.first(alternative) for alternative in alternatives]
        overlapping = sum(1 for i, start in enumerate(starts)
                          if any(start & other for j, other in enumerate(starts) if j != i))
        if not overlapping:
            return
        if repeated:
            self.refuse("alternatives inside a repeat can start with the same character, as in (a|ab)*; make "
                        "them start differently, e.g. (ab?)*")
        self.ambiguous_paths *= overlapping
        if self.ambiguous_paths > MAX_AMBIGUOUS_PATHS:
            self.refuse("too many alternatives can start with the same character; factor out their common "
                        "start, e.g. ab(c|d) instead of (abc|abd)")

    def _check_sequence(self, items) -> None:
        for index, item in enumerate(items):
            if not self.variable(item):
                continue
            eats = self.chars([item])
            for later in items[index + 1:]:
                later_chars = self.first([later])
                if self.variable(later) and later_chars & eats:
                    self.refuse("two quantifiers in a row can match the same characters, as in a*a*, \\d+\\d* or "
                                ".*x.*; separate them by something only one of them can match")
                if self.width([later])[0] > 0 and not later_chars & eats:
                    break  # something the first quantifier cannot eat: the split point is fixed
