"""Thumbnails with Pillow: EXIF orientation applied, metadata stripped, decompression bombs refused."""
from __future__ import annotations

import io
import re
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

from PIL import Image, ImageOps, UnidentifiedImageError

from baas.errors import Invalid, ServiceUnavailable

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


class RenderPool:
    """Thumbnails are made on a few pool threads, never by as many request threads as ask at once.

    At most `workers` renders run at a time (Pillow decodes and resizes without holding the GIL, so they do not
    stall the Python of other requests either) and at most `queue` more wait for a renderer; any request beyond
    gets 503 with Retry-After at once instead of tying up a request thread. Requests for a thumbnail already being
    made wait for that render instead of starting their own.
    """

    def __init__(self, workers: int, queue: int, retry_after_seconds: int = 2):
        self.workers = workers
        self.retry_after_seconds = retry_after_seconds
        self._slots = threading.BoundedSemaphore(workers + queue)
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._running: dict = {}  # key -> future of the render under way
        self.renders = 0  # thumbnails made (tests and benchmarks watch this)

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="baas-thumbs")
            return self._executor

    def run(self, key: str, render, *args):
        """`render(*args)`'s result, made on a pool thread; one render per `key` at a time."""
        with self._lock:
            future = self._running.get(key)
        if future is None:
            if not self._slots.acquire(blocking=False):
                raise ServiceUnavailable("Thumbnails are being made for other requests; retry shortly.",
                                         headers={"Retry-After": str(self.retry_after_seconds)})
            pool = self._pool()
            with self._lock:
                future = self._running.get(key)
                if future is None:
                    future = self._running[key] = pool.submit(self._render, key, render, *args)
                    started = True
                else:
                    started = False
            if not started:
                self._slots.release()
        return future.result()

    def _render(self, key: str, render, *args):
        try:
            self.renders += 1
            return render(*args)
        finally:
            with self._lock:
                self._running.pop(key, None)
            self._slots.release()
