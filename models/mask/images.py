"""Decoding uploaded images safely: format, size and integrity checked before any pixel work.

Torch-free: the front service decodes uploads with it.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps

FORMATS = ("JPEG", "PNG", "WEBP", "BMP")
DEFAULT_MAX_PIXELS = 40_000_000  # e.g. 8000 x 5000; larger is refused before decoding


class InvalidImageError(ValueError):
    """An upload that is not an acceptable image; the message says why."""


def load_rgb(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode JPEG, PNG, WebP or BMP bytes into an RGB image with EXIF orientation applied.

    Refuses (:class:`InvalidImageError`) other content, truncated files and images with more
    than ``max_pixels`` pixels: the size is read from the header, so a decompression bomb
    is refused before it is decompressed.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            width, height = image.size
            if width * height > max_pixels:
                raise InvalidImageError(
                    f"image too large: {width}x{height} pixels, at most {max_pixels:,} accepted"
                )
            image.load()
    except InvalidImageError:
        raise
    except Image.UnidentifiedImageError:
        supported = ", ".join(FORMATS)
        raise InvalidImageError(f"not an image in a supported format ({supported})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InvalidImageError(f"image too large: {error}") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise InvalidImageError(f"image could not be decoded: {error}") from None
    image = ImageOps.exif_transpose(image)
    return image if image.mode == "RGB" else image.convert("RGB")
