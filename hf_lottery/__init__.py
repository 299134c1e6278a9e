"""hf-lottery: lottery tickets for BERT ("When BERT Plays the Lottery, All Tickets Are Winning") on the HF stack."""

__version__ = "0.1.0"

from .gates import TicketHandle, apply_ticket  # noqa: E402
from .structure import EncoderStructure  # noqa: E402
from .ticket import LotteryTicket  # noqa: E402


__all__ = ["EncoderStructure", "LotteryTicket", "TicketHandle", "apply_ticket", "__version__"]
