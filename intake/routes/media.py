"""Public proof photos: the copy stored when a report was resolved, as citizens may check it.

Only what `intake.photos` wrote is served: re-encoded without any metadata, under a name the
server chose (``uuid4`` hex), so the names are unguessable and never reused: a photo is cached
for a year (``immutable``). The name is checked against that pattern before the disk is touched.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse

from intake.deps import ServiceDep
from intake.errors import ApiError
from intake.models import MEDIA_PATH

router = APIRouter(prefix=MEDIA_PATH, tags=["media"])

NAME_PATTERN = r"^[0-9a-f]{32}\.(jpg|png)$"
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png"}
CACHE = "public, max-age=31536000, immutable"


@router.get(
    "/{name}",
    response_class=FileResponse,
    responses={
        200: {
            "description": "the photo",
            "content": {t: {"schema": {"type": "string", "format": "binary"}}
                        for t in MEDIA_TYPES.values()},
        },
        404: {"description": "no such photo"},
    },
)  # fmt: skip
def proof_photo(
    name: Annotated[str, Path(pattern=NAME_PATTERN, description="as in a report's media_url")],
    service: ServiceDep,
) -> FileResponse:
    """The proof photo of a resolved report (JPEG or PNG, without metadata)."""
    path = service.settings.media_dir / name
    if not path.is_file():
        raise ApiError(404, "no such photo")
    return FileResponse(
        path,
        media_type=MEDIA_TYPES[name.rsplit(".", 1)[1]],
        headers={"Cache-Control": CACHE, "X-Content-Type-Options": "nosniff"},
    )
