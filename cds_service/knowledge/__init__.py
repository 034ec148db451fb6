"""Clinical knowledge: the YAML files under hooks/<knowledge>/ (model), loaded and cross-checked
(load), compiled for recognising codes and words (matching, language, terminology, icd10cm), and
the hook services declared beside them (registry)."""

from cds_service.knowledge.load import Knowledge, load_knowledge
from cds_service.knowledge.matching import NO_KEYS, ConceptIndex, Matcher, Systems
from cds_service.knowledge.model import Rating, RatingCell, Scenario, SuggestionPlan

__all__ = [
    "NO_KEYS",
    "ConceptIndex",
    "Knowledge",
    "Matcher",
    "Rating",
    "RatingCell",
    "Scenario",
    "SuggestionPlan",
    "Systems",
    "load_knowledge",
]
