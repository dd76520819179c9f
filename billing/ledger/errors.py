from kernel.errors import ApplicationError


class LedgerError(ApplicationError):
    code = "ledger_error"
    http_status = 409


class TransferIdReused(LedgerError):
    code = "idempotency_key_reused"
    title = "Idempotency key reused"
    what_to_do = "This ledger transfer id was used for a different movement; use a new id for a new movement."


class InsufficientBalance(LedgerError):
    code = "insufficient_balance"
    title = "Not enough units"
    what_to_do = "Not enough units in the wallet (or stock) for this movement."


class PendingNotFound(LedgerError):
    code = "hold_not_found"
    http_status = 404
    what_to_do = "No such stamping hold; the stamp's own status says what happened to the unit."


class PendingAlreadyPosted(LedgerError):
    code = "hold_already_committed"
    what_to_do = "The stamping hold was already committed: the unit is spent on its stamp."


class PendingAlreadyVoided(LedgerError):
    code = "hold_already_released"
    what_to_do = "The stamping hold was already released: the unit is back in the wallet."


class PendingExpired(LedgerError):
    code = "hold_expired"
    what_to_do = "The stamping hold timed out and was released; the stamp's own status says what happened to the unit."


class AccountNotFound(LedgerError):
    code = "account_not_found"
    http_status = 404
    what_to_do = (
        "No ledger account for this channel or customer: the channel was never allocated stock, or "
        "the customer never funded."
    )


SQLSTATE_ERRORS: dict[str, type[LedgerError]] = {
    "L0001": TransferIdReused,
    "L0002": InsufficientBalance,
    "L0003": PendingNotFound,
    "L0004": PendingAlreadyPosted,
    "L0005": PendingAlreadyVoided,
    "L0006": PendingExpired,
    "L0007": AccountNotFound,
}
