from kernel.errors import ApplicationError


class InvalidQuantity(ApplicationError):
    code = "invalid_quantity"
    http_status = 400
    title = "Invalid quantity"
    what_to_do = "Order between 1 and 1,000 units."


class InsufficientStock(ApplicationError):
    code = "insufficient_stock"
    http_status = 409
    title = "The channel is out of stock"
    what_to_do = "The channel has too few units in stock for this order. Order fewer or try later."


class OrderNotFound(ApplicationError):
    code = "order_not_found"
    http_status = 404
    title = "No such order"
    what_to_do = "No such order in this channel."


class RefundNotAllowed(ApplicationError):
    code = "refund_not_allowed"
    http_status = 409
    title = "Refund not possible"
    what_to_do = "Not credited, outside the refund window, or more units than are unused."


class RefundNotFound(ApplicationError):
    code = "refund_not_found"
    http_status = 404
    title = "No such refund"
    what_to_do = "No such refund in this channel: use the `id` (`rfd_...`) a refund answered with."


class OrderNotPayable(ApplicationError):
    code = "order_not_payable"
    http_status = 409
    title = "The order is not awaiting payment"
    what_to_do = "The order was paid, expired or closed: see GET /api/v1/orders/{id}. Place a new order to buy."
