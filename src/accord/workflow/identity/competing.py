"""Competing candidates: a registration is one person, so candidates who cannot be the
same person as each other share its probability.

Rule: pure, no I/O. Fellegi–Sunter scores each candidate as if it were the only one:
its odds are ``o_i = λ·LR_i`` against each stored patient alone. But a registration is
of one person. When it matches its own earlier record well and, less well, a stranger
of the same name across town, both cannot be right, and the stranger's odds must make
room for the record's (the one-to-one constraint of record linkage: Jaro 1989;
Sadinle, "Bayesian estimation of bipartite matchings", 2017). A registry holds
duplicates, though: a registration's earlier records may be several, all right at once.

For a candidate ``i`` and another ``j`` there are four readings: neither (odds 1),
``i`` only (``o_i``), ``j`` only (``o_j``), and both, one person with three records
(``o_i·o_j·κ_ij``). So ``i``'s odds become ``o_i·(1 + κ_ij·o_j)/(1 + o_j)``, for
the other that takes most (several others are often one person's records: their
factors are not multiplied). ``κ_ij`` says how well ``i`` and ``j`` fit one
person beyond what their odds say already: on a field the registration holds, each
was compared with it, and ``o_i·o_j`` counts their agreements and disagreements with
it; on a field it leaves out (or either of them does), nothing links theirs, and one
person's records must explain their own disagreement there. It is the product of the
Bayes factors of those disagreements in their own comparison, at most 1 (``Together``).

Only candidates with odds of at least ``FLOOR`` compete (the many weak ones change
nothing measurable), the ``MAX_COMPETITORS`` strongest of them: a lookup then compares
a few pairs of candidates at most, not all of them with each other. What a candidate
loses is the ``others`` term of its explanation (``less``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from accord.workflow.identity.compare import Features
from accord.workflow.identity.fellegi_sunter import FieldWeight, MatchResult, probability

FLOOR = -10.0  # log2 odds: a candidate weaker than this neither competes nor is weighed
MAX_COMPETITORS = 8  # the strongest candidates that compete with each candidate


@dataclass(frozen=True, slots=True)
class Rival:
    """A scored candidate: its score (log2 odds), its comparison levels against the
    registration (``compare.NULL`` where either side is missing) and its features."""

    patient_id: str
    score: float
    levels: tuple[int, ...]
    features: Features


# How well two candidates fit one person: κ (module doc), 0..1.
Together = Callable[[Rival, Rival], float]


def compete(rivals: Sequence[Rival], together: Together) -> dict[str, tuple[float, str]]:
    """The bits each candidate loses to the others (module doc), and the id of the other
    that takes most: only the candidates that lose some, by id. Those weaker than
    ``FLOOR`` are left as they are."""
    strong = sorted((r for r in rivals if r.score >= FLOOR),
                    key=lambda r: (-r.score, r.patient_id))[:MAX_COMPETITORS + 1]
    fit: dict[tuple[str, str], float] = {}
    taken: dict[str, tuple[float, str]] = {}
    for rival in strong:
        penalty, taker = 0.0, ""
        for other in strong:
            if other.patient_id == rival.patient_id:
                continue
            pair = (min(rival.patient_id, other.patient_id),
                    max(rival.patient_id, other.patient_id))
            if pair not in fit:
                fit[pair] = together(rival, other)
            odds = math.exp2(min(other.score, 60.0))
            bits = math.log2((1.0 + odds) / (1.0 + fit[pair] * odds))
            if bits > penalty:
                penalty, taker = bits, other.patient_id
        if penalty > 0:
            taken[rival.patient_id] = (penalty, taker)
    return taken


def less(result: MatchResult, penalty: float, taker: str) -> MatchResult:
    """``result`` with ``penalty`` bits taken off its score by the candidate ``taker``,
    as the ``others`` term: its terms still add up to its score."""
    term = FieldWeight("others", taker, round(-penalty, 4))
    score = round(sum(t.weight for t in (*result.fields, term)), 4)
    return replace(result, score=score, probability=probability(score),
                   fields=(*result.fields, term))
