"""Patient identity: identifier resolution, merge plans, and demographic matching.

- :mod:`.identifiers`: PID-3 identifiers keyed by authority and value, resolved to a
  patient (tombstones followed to their survivor), and the plan of a merge;
- :mod:`.matcher`: registrations scored against stored patients (:class:`Matcher`), from
  the field comparisons of :mod:`.compare` and the Fellegi–Sunter weights of
  :mod:`.fellegi_sunter` (given-name equivalence in :mod:`.nicknames`);
- :mod:`.frequencies`: term counts (a rare agreement counts more) and the counted keys
  a store keeps current; :mod:`.placeholders`: default values read as missing;
- :mod:`.households`: twins, namesakes, parents and children told apart from duplicates;
- :mod:`.index`: the blocking keys that find the few candidates worth scoring (and the
  lookup plan that leaves out frequent ones);
- :mod:`.train`: the weights estimated from the stored patients themselves (EM), and
  corrected by reviewers' decisions.

Rules: pure (no I/O, no clock); the workflow applies what these decide. Demographic
matching only ever proposes pairs for review: nothing is merged on demographics alone.
The names below are the public API; the modules' other names are theirs.
"""

from accord.workflow.identity.compare import COMPARISONS
from accord.workflow.identity.fellegi_sunter import (
    DEFAULT_WEIGHTS,
    ComparisonWeights,
    FieldWeight,
    MatchResult,
    Weights,
    default_weights,
)
from accord.workflow.identity.frequencies import Frequencies
from accord.workflow.identity.identifiers import (
    IdentifierIndex,
    IdentifierKey,
    MergePlan,
    Resolution,
    identifier_key,
    plan_merge,
    resolve,
)
from accord.workflow.identity.index import BLOCKING_RULES, PatientIndex
from accord.workflow.identity.matcher import (
    DEFAULT_POPULATION,
    Candidates,
    Matcher,
    compare_patients,
    match_candidates,
)
from accord.workflow.identity.train import train

__all__ = [
    "BLOCKING_RULES",
    "COMPARISONS",
    "DEFAULT_POPULATION",
    "DEFAULT_WEIGHTS",
    "Candidates",
    "ComparisonWeights",
    "FieldWeight",
    "Frequencies",
    "IdentifierIndex",
    "IdentifierKey",
    "MatchResult",
    "Matcher",
    "MergePlan",
    "PatientIndex",
    "Resolution",
    "Weights",
    "compare_patients",
    "default_weights",
    "identifier_key",
    "match_candidates",
    "plan_merge",
    "resolve",
    "train",
]
