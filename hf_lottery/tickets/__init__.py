"""The ticket: masks and metadata (`LotteryTicket`), the checks of its fields, its file format and legacy import."""
