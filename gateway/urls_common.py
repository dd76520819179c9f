"""Error handlers shared by the issuer's and the channels' URL configurations."""

handler400 = "gateway.http.problems.handler400"
handler403 = "gateway.http.problems.handler403"
handler404 = "gateway.http.problems.handler404"
handler500 = "gateway.http.problems.handler500"
