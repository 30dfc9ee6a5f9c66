"""Thumbnails with Pillow: EXIF orientation applied, metadata stripped, decompression bombs refused."""
from __future__ import annotations

import io
import re
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from baas.errors import Invalid

SIZE = re.compile(r"^([1-9][0-9]{0,4})x([1-9][0-9]{0,4})$")
FITS = ("cover", "contain")
THUMBNAIL_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff")


def parse_request(thumb: str, fit: str | None, allowed_sizes: list) -> tuple[int, int, str]:
    match = SIZE.match(thumb or "")
    if not match or thumb not in allowed_sizes:
        raise Invalid(f"Thumbnail sizes are {', '.join(allowed_sizes)}.", errors={"thumb": ["Not an allowed size."]})
    fit = fit or "cover"
    if fit not in FITS:
        raise Invalid("'fit' is cover or contain.", errors={"fit": ["Unknown fit."]})
    return int(match.group(1)), int(match.group(2)), fit


def render(data: bytes, width: int, height: int, fit: str, max_pixels: int) -> tuple[bytes, str]:
    """(thumbnail bytes, content type): JPEG for opaque images, PNG where there is transparency."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            # The header alone tells the size: refuse before decoding a single pixel.
            if image.width * image.height > max_pixels:
                raise Invalid(f"The image has {image.width}x{image.height} pixels, more than the {max_pixels} "
                              f"a thumbnail may be made from.", errors={"thumb": ["Image too large."]})
            if image.format == "JPEG":
                image.draft("RGB", (width * 2, height * 2))  # decode at a reduced scale: less memory and time
            image.load()
            image = ImageOps.exif_transpose(image)
            transparent = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
            image = image.convert("RGBA" if transparent else "RGB")
            if fit == "cover":
                image = ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS)
            else:
                image.thumbnail((width, height), Image.Resampling.LANCZOS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Invalid("The image is a decompression bomb (too many pixels); no thumbnail is made.",
                      errors={"thumb": ["Image too large."]}) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, Invalid):
            raise
        raise Invalid("The file is not an image a thumbnail can be made from.",
                      errors={"thumb": ["Unreadable image."]}) from None
    out = io.BytesIO()
    # A new image from pixels only: EXIF (GPS position, camera serial), ICC and text chunks are not copied.
    if transparent:
        image.save(out, "PNG", optimize=True)
        return out.getvalue(), "image/png"
    image.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue(), "image/jpeg"
