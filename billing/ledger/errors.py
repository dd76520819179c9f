from kernel.errors import ApplicationError


class LedgerError(ApplicationError):
    code = "ledger_error"
    http_status = 409


class TransferIdReused(LedgerError):
    code = "idempotency_key_reused"
    title = "Idempotency key reused"


class InsufficientBalance(LedgerError):
    code = "insufficient_balance"
    title = "Not enough units"


class PendingNotFound(LedgerError):
    code = "hold_not_found"
    http_status = 404


class PendingAlreadyPosted(LedgerError):
    code = "hold_already_committed"


class PendingAlreadyVoided(LedgerError):
    code = "hold_already_released"


class PendingExpired(LedgerError):
    code = "hold_expired"


class AccountNotFound(LedgerError):
    code = "account_not_found"
    http_status = 404


SQLSTATE_ERRORS: dict[str, type[LedgerError]] = {
    "L0001": TransferIdReused,
    "L0002": InsufficientBalance,
    "L0003": PendingNotFound,
    "L0004": PendingAlreadyPosted,
    "L0005": PendingAlreadyVoided,
    "L0006": PendingExpired,
    "L0007": AccountNotFound,
}
