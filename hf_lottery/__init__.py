"""hf-lottery: lottery tickets for BERT ("When BERT Plays the Lottery, All Tickets Are Winning") on the HF stack."""

__version__ = "0.1.0"

from .compaction import compact_model, register_auto_classes  # noqa: E402
from .evaluation import evaluate  # noqa: E402
from .gates import TicketHandle, apply_ticket  # noqa: E402
from .hub import load_pruned_model, push_ticket_to_hub, push_to_hub  # noqa: E402
from .importance import ImportanceResult, compute_importance  # noqa: E402
from .magnitude_search import find_magnitude_ticket  # noqa: E402
from .rewind import rewind  # noqa: E402
from .sampling import sample_ticket, super_tickets  # noqa: E402
from .structure import EncoderStructure  # noqa: E402
from .structured_search import find_structured_ticket  # noqa: E402
from .ticket import LotteryTicket  # noqa: E402
from .trainer import LotteryArguments, LotteryTrainer  # noqa: E402


register_auto_classes()

__all__ = [
    "EncoderStructure",
    "ImportanceResult",
    "LotteryArguments",
    "LotteryTicket",
    "LotteryTrainer",
    "TicketHandle",
    "__version__",
    "apply_ticket",
    "compact_model",
    "compute_importance",
    "evaluate",
    "find_magnitude_ticket",
    "find_structured_ticket",
    "load_pruned_model",
    "push_ticket_to_hub",
    "push_to_hub",
    "rewind",
    "sample_ticket",
    "super_tickets",
]
