from kernel.errors import ApplicationError


class InsufficientQuota(ApplicationError):
    code = "insufficient_quota"
    http_status = 409
    title = "No quota left"
    what_to_do = "The customer has no quota left; buy some (`POST /api/v1/orders`)."


class StampJobNotFound(ApplicationError):
    code = "stamp_not_found"
    http_status = 404
    title = "No such stamp"
    what_to_do = "No such stamp or batch in this channel."


class DocumentNotReady(ApplicationError):
    code = "document_not_ready"
    http_status = 409
    title = "The stamped document is not ready"
    what_to_do = "The stamp is not `stamped` (yet); poll `GET /api/v1/stamps/{id}`."


class Overloaded(ApplicationError):
    code = "overloaded"
    http_status = 503
    title = "Stamping is at capacity"
    sheds_load = True
    what_to_do = (
        "The channel's stamping queue holds what its lane can finish within the promised wait, or it "
        "is taking new documents faster than its intake pace (1.5 times the rate it stamps them, once "
        "it has a backlog); nothing was charged. Retry after `Retry-After`."
    )


class PurchasesOverloaded(ApplicationError):
    code = "purchases_overloaded"
    http_status = 503
    title = "New purchases wait: stamping is near capacity"
    sheds_load = True
    what_to_do = (
        "The channel's stamping queue is near what its lane can finish within the promised wait, and new "
        "purchases are refused before stamp requests (overload priorities); nothing was done. Retry after "
        "`Retry-After`."
    )


class RegistrationsOverloaded(ApplicationError):
    code = "registrations_overloaded"
    http_status = 503
    title = "New customers wait: stamping is near capacity"
    sheds_load = True
    what_to_do = (
        "The channel's stamping queue is near what its lane can finish within the promised wait, and new "
        "customers are refused first, before purchases and stamp requests (overload priorities); nothing was "
        "done. Retry after `Retry-After`."
    )


LOWER_CLASS_OVERLOADED = {"purchases": PurchasesOverloaded, "registrations": RegistrationsOverloaded}
