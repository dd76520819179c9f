"""A pause of one class of new work, for one channel or for every channel (public schema)."""

from django.db import models


class Brownout(models.Model):
    class Kind(models.TextChoices):
        # values are the classes' names in the API, the webhooks and the command line, lowest priority last
        STAMPING = "stamping", "new stamp requests"
        PURCHASES = "purchases", "new purchases"
        REGISTRATIONS = "registrations", "new customers"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    channel = models.ForeignKey(
        "tenants.Channel", null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="Empty: every channel.",
    )  # fmt: skip
    reason = models.TextField()
    automatic = models.BooleanField(default=False, help_text="Started by the backlog-age check (it lifts it too).")
    started_at = models.DateTimeField()
    started_by = models.CharField(max_length=150)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ("-started_at", "-id")
        constraints = [
            # one open pause per class and scope (the scope "every channel" included: nulls not distinct)
            models.UniqueConstraint(
                fields=("kind", "channel"),
                condition=models.Q(ended_at__isnull=True),
                nulls_distinct=False,
                name="brownout_one_open_per_kind_and_scope",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} paused for {self.scope} since {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def scope(self) -> str:
        """``all`` or the channel's code."""
        return "all" if self.channel_id is None else self.channel.code
