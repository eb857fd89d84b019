"""Triage: label each inbound message with kind, sentiment, priority, crisis, private channel and language.

Out of the box the heads are fitted on a shipped seed set; a team's own labelled history replaces them
(``copilot triage train FILE``), saved under ``<data_dir>/triage/`` and loaded automatically.
"""

from copilot.triage.cases import CRISIS_CATEGORIES, Case, CaseSet, load_cases, read_inbound
from copilot.triage.language import detect_language
from copilot.triage.model import TriageModel, train_team_model
from copilot.triage.triager import Triager, build_triager, priority_of, triage_dir

__all__ = [
    "CRISIS_CATEGORIES", "Case", "CaseSet", "TriageModel", "Triager", "build_triager", "detect_language",
    "load_cases", "priority_of", "read_inbound", "train_team_model", "triage_dir",
]
