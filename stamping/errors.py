from kernel.errors import ApplicationError


class InsufficientQuota(ApplicationError):
    code = "insufficient_quota"
    http_status = 409
    title = "No quota left"


class StampJobNotFound(ApplicationError):
    code = "stamp_not_found"
    http_status = 404
    title = "No such stamp"


class DocumentNotReady(ApplicationError):
    code = "document_not_ready"
    http_status = 409
    title = "The stamped document is not ready"


class Overloaded(ApplicationError):
    code = "overloaded"
    http_status = 503
    title = "Stamping is at capacity"


class InvalidCursor(ApplicationError):
    code = "invalid_cursor"
    title = "Invalid cursor"
