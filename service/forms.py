"""Text fields and photos of the API's multipart forms: read, checked, or refused (BadInput).

Checked before any file is written, so a refused request stores nothing.
"""

from __future__ import annotations

from concurrent.futures.process import BrokenProcessPool

from service.errors import BadInput
from service.uploads import Form, Upload
from service.work import Admission

__all__ = ["SPEC_EXAMPLE", "optional_text", "parse_spec_field", "required_photos",
           "required_text"]

SPEC_EXAMPLE = ('{"roi": [120, 80, 1600, 1100], "tolerances": {"delta_e00": 2.0, '
                '"ssim_min": 0.5, "max_defects": 0}}')


def optional_text(form: Form, name: str, max_length: int = 200) -> str | None:
    value = form.text(name)
    if value is None or value.strip() == "":
        return None
    value = value.strip()
    if "\x00" in value:  # PostgreSQL cannot store it; refused before any file is written
        raise BadInput(f"{name} contains a NUL character; send plain text")
    if len(value) > max_length:
        raise BadInput(f"{name} is {len(value)} characters long; keep it to {max_length}")
    return value


def required_text(form: Form, name: str, hint: str, max_length: int = 200) -> str:
    value = optional_text(form, name, max_length)
    if value is None:
        raise BadInput(f"{name} is missing; {hint}")
    return value


def required_photos(form: Form, name: str, hint: str) -> list[Upload]:
    uploads = form.files.get(name) or []
    if not uploads:
        raise BadInput(f"{name} is missing: no photo was uploaded; {hint}")
    return uploads


async def parse_spec_field(text: str | None, admission: Admission):  # -> vision.spec.Spec
    """The spec sheet sent as a form field (JSON or YAML); empty or absent: the defaults.

    Parsed in the admission budget's helper process (service.work): PyYAML is pure Python, and
    a 250 KB spec took 1.5 s of the GIL, which a thread would take from the event loop.
    """
    from vision.spec import SpecError, parse_spec

    try:
        if text is None or not text.strip():
            return parse_spec({})
        return await admission.run_in_process(parse_spec, text)
    except SpecError as exc:
        raise BadInput(f"spec: {exc}") from None
    except BrokenProcessPool:
        raise BadInput("spec: the spec sheet could not be parsed (its parser ran out of "
                       "memory or was stopped); a spec sheet is a few lines, send that") from None
