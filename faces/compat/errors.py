"""The compat facade's refusals, in a module of their own: the error catalogue (``manage.py errors_doc``)
finds every installed app's ``errors`` module by itself, so the edge never names a face."""

from kernel.errors import ApplicationError


class InvalidCredentials(ApplicationError):
    code = "compat_invalid_credentials"
    http_status = 401
    title = "Wrong user name or password"
    what_to_do = "Check the compat user name and password the channel gave you (portal: Compat users)."


class LoginThrottled(ApplicationError):
    code = "compat_login_throttled"
    http_status = 429
    title = "Too many failed logins"
    what_to_do = "Too many wrong passwords for this user; wait `Retry-After` seconds and check the password."


class InvalidToken(ApplicationError):
    code = "compat_invalid_token"
    http_status = 401
    title = "Invalid or expired token"
    what_to_do = "Log in again (`POST /compat/api/users/login`) and send the new token as `Authorization: Bearer`."


class CompatUserExists(ApplicationError):
    code = "compat_user_exists"
    http_status = 409
    title = "The compat user exists"
    what_to_do = "Choose another user name, or set a new password for the existing user."


class CompatUserInvalid(ApplicationError):
    code = "compat_user_invalid"
    http_status = 400
    title = "The compat user cannot be created"
    what_to_do = "Use a password the validators accept, and an active API key of this channel with the `stamp` scope."


class CompatInvalidInput(ApplicationError):
    code = "compat_invalid_input"
    http_status = 400
    title = "A field is missing or malformed"
    what_to_do = "Send the fields the call needs, as docs/compat.md lists them; `detail` names the field."


class CompatUploadNotFound(ApplicationError):
    code = "compat_upload_not_found"
    http_status = 404
    title = "No such uploaded document"
    what_to_do = "Upload the document first (`POST /compat/fileupload/uploaddoc2`) and pass its `id` as `docId`."


class CompatStampPending(ApplicationError):
    code = "compat_stamp_pending"
    http_status = 503
    sheds_load = True  # an answer, not a server error
    title = "The stamp is still being made"
    what_to_do = (
        "The stamp did not finish within the wait; nothing more was charged. Send the same call again with the "
        'same serial (`retryFlag: "1"`): it gets this same stamp, never a second unit.'
    )
