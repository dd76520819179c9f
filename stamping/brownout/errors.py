from kernel.errors import ApplicationError


class Paused(ApplicationError):
    """A class of new work is paused (brownout): nothing was done; ``Retry-After`` says when to ask again."""

    http_status = 503
    sheds_load = True
    kind = ""


class StampingPaused(Paused):
    code = "stamping_paused"
    kind = "stamping"
    title = "New stamp requests are paused"
    what_to_do = (
        "The issuer paused new stamp requests (brownout: `reason` says why) to finish the stamps already "
        "accepted first; nothing was charged. `GET /api/v1/status` shows when it is lifted; retry after "
        "`Retry-After`."
    )


class PurchasesPaused(Paused):
    code = "purchases_paused"
    kind = "purchases"
    title = "New purchases are paused"
    what_to_do = (
        "The issuer paused new purchases (brownout: `reason` says why); orders already paid are still "
        "credited. `GET /api/v1/status` shows when it is lifted; retry after `Retry-After`."
    )


class RegistrationsPaused(Paused):
    code = "registrations_paused"
    kind = "registrations"
    title = "New customers are paused"
    what_to_do = (
        "The issuer paused registering new customers (brownout: `reason` says why); existing customers "
        "are served. `GET /api/v1/status` shows when it is lifted; retry after `Retry-After`."
    )


class InvalidBrownout(ApplicationError):
    code = "invalid_brownout"
    http_status = 400
    title = "Invalid brownout change"
    what_to_do = "Name a class (`stamping`, `purchases`, `registrations`), a known channel or all, and a reason."


PAUSED_ERRORS = {error.kind: error for error in (StampingPaused, PurchasesPaused, RegistrationsPaused)}
