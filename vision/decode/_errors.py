"""The one exception the decode stage raises for bad input, and its standard wordings."""

from PIL import UnidentifiedImageError

REEXPORT = "re-export or re-upload the photo"


class ImageDecodeError(ValueError):
    """An image could not be loaded; ``str()`` is one line: name, problem, and how to fix it.

    Parameters
    ----------
    name : str
        The file path, or the name given by the caller for in-memory data.
    problem : str
        What is wrong with the input.
    fix : str
        What the user can do about it.
    """

    def __init__(self, name: str, problem: str, fix: str) -> None:
        # All three go to ``args`` so the exception survives pickling (batch workers).
        super().__init__(name, problem, fix)
        self.name = name
        self.problem = problem
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.name}: {self.problem}; {self.fix}"


def truncated(label: str, fmt: str, size: int) -> ImageDecodeError:
    return ImageDecodeError(
        label,
        f"the {fmt.upper()} data is truncated (file ends after {size:,} bytes)",
        REEXPORT,
    )


def corrupt(label: str, fmt: str, detail: str = "") -> ImageDecodeError:
    # Decoder messages can span lines or run long; the error must stay one readable line.
    detail = " ".join(detail.split())
    if len(detail) > 160:
        detail = detail[:157] + "..."
    detail = f" ({detail})" if detail else ""
    return ImageDecodeError(label, f"the {fmt.upper()} data is corrupt{detail}", REEXPORT)


def pil_error(label: str, fmt: str, size: int, error: BaseException) -> ImageDecodeError:
    message = " ".join(str(error).split())[:160]
    lowered = message.lower()
    if isinstance(error, EOFError) or "truncat" in lowered or "end of" in lowered:
        return truncated(label, fmt, size)
    if isinstance(error, UnidentifiedImageError):
        # Pillow hides the plugin's reason; the sniffed signature was right, so the header is bad.
        return corrupt(label, fmt, "its header could not be parsed")
    if "not supported" in lowered or "unsupported" in lowered:
        return ImageDecodeError(
            label,
            f"this {fmt.upper()} variant cannot be decoded ({message})",
            "re-export it as JPEG or PNG",
        )
    return corrupt(label, fmt, message)
