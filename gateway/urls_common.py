"""Error handlers shared by the issuer's and the channels' URL configurations."""

handler400 = "gateway.api.problems.handler400"
handler403 = "gateway.api.problems.handler403"
handler404 = "gateway.api.problems.handler404"
handler500 = "gateway.api.problems.handler500"
