"""Serializer fields of the APIs' own style."""

from __future__ import annotations

from django.db import models
from rest_framework import serializers

from kernel.timestamps import utc_timestamp


class UtcDateTimeField(serializers.DateTimeField):
    """A date-time written as every API answer writes one: UTC with ``Z`` (``kernel.timestamps``),
    not in the server's ``TIME_ZONE``."""

    def to_representation(self, value):
        return utc_timestamp(value) if value else None


# A ModelSerializer whose model date-times are UtcDateTimeField. (A comment, not a docstring: the OpenAPI
# generator would print a docstring as the description of every serializer built on it.)
class ApiModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {**serializers.ModelSerializer.serializer_field_mapping}
    serializer_field_mapping[models.DateTimeField] = UtcDateTimeField
