from kernel.errors import ApplicationError


class InvalidQuantity(ApplicationError):
    code = "invalid_quantity"
    http_status = 400
    title = "Invalid quantity"


class InsufficientStock(ApplicationError):
    code = "insufficient_stock"
    http_status = 409
    title = "The channel is out of stock"


class OrderNotFound(ApplicationError):
    code = "order_not_found"
    http_status = 404
    title = "No such order"


class RefundNotAllowed(ApplicationError):
    code = "refund_not_allowed"
    http_status = 409
    title = "Refund not possible"
