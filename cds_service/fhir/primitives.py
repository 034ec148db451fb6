"""FHIR R4B date, dateTime and instant for the resource views: fhir_core's own types (the same regular
expressions, values, errors and serialisers), with a shorter way through for the values nearly every
resource holds, a full instant with its offset or a full date. For those, fhir_core's validator ends
in the pydantic-core parse of the text after its pattern has matched, its partial-date and leap-second
readings having found nothing: this way asks the pattern, rules those two out by the text's length and
its seconds, and goes straight to the parse. Anything else (a partial date, a leap second, a value
that is no text) takes fhir_core's way. tests/test_perf_primitives.py compares both on generated
values."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Annotated, Any

from fhir_core import types
from pydantic_core.core_schema import ValidationInfo

# The class names stay fhir_core's: its error messages name the class ("DateTime value string...").


class Date(types.Date):
    @classmethod
    def _validate(
        cls, input_value: Any, validator: Callable[[Any], Any], validation_info: ValidationInfo
    ) -> Any:
        # YYYY-MM-DD: no partial date (it has a day), no leap second (it has no time).
        if (
            type(input_value) is str
            and len(input_value) == 10
            and cls.pattern.fullmatch(input_value)
        ):
            return validator(input_value)
        return super()._validate(input_value, validator, validation_info)


def _with_offset(cls: Any, input_value: Any, validator: Callable[[Any], Any]) -> Any:
    """The parsed value of a full time with its offset whose seconds are no leap second, by the
    short way; None when the long way must answer. What fhir_core checks of the parsed value (a
    time zone) is checked."""
    if (
        type(input_value) is str
        and input_value[17:19] != "60"
        and cls.pattern.fullmatch(input_value)
    ):
        validated = validator(input_value)
        if isinstance(validated, datetime.datetime) and validated.tzinfo is not None:
            return validated
    return None


class DateTime(types.DateTime):
    @classmethod
    def _validate(
        cls, input_value: Any, validator: Callable[[Any], Any], validation_info: ValidationInfo
    ) -> Any:
        # Longer than a date, the pattern's only longer form is a time with its offset (required):
        # no partial date.
        if type(input_value) is str and len(input_value) > 10:
            validated = _with_offset(cls, input_value, validator)
            if validated is not None:
                return validated
        return super()._validate(input_value, validator, validation_info)


class Instant(types.Instant):
    @classmethod
    def _validate(
        cls, input_value: Any, validator: Callable[[Any], Any], validation_info: ValidationInfo
    ) -> Any:
        # The pattern is always a full instant with its offset: only the leap second is left out.
        validated = _with_offset(cls, input_value, validator)
        if validated is not None:
            return validated
        return super()._validate(input_value, validator, validation_info)


DateType = Annotated[datetime.date, Date()]
DateTimeType = Annotated[datetime.datetime, DateTime()]
InstantType = Annotated[datetime.datetime, Instant()]
