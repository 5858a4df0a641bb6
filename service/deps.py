"""FastAPI dependencies: the service's resources, a database session, the caller's tenant."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from service.auth import tenant_for_key
from service.operations import Service

__all__ = ["ServiceDep", "SessionDep", "TenantDep"]

_bearer = HTTPBearer(auto_error=False, description="An API key from `sealcheck keys create "
                     "--tenant NAME`, sent as `Authorization: Bearer KEY`.")


def get_service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]


def get_session(service: ServiceDep) -> Iterator[Session]:
    with service.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_tenant_id(
    service: ServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The id of the tenant whose key came with the request; 401 without a valid key."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise HTTPException(401, "missing API key: send 'Authorization: Bearer KEY' (create a "
                            "key with 'sealcheck keys create --tenant NAME')", headers=challenge)
    with service.sessions() as session:
        tenant = tenant_for_key(session, credentials.credentials)
    if tenant is None:
        raise HTTPException(401, "unknown API key: check the key, or create one with "
                            "'sealcheck keys create --tenant NAME'", headers=challenge)
    return tenant.id


TenantDep = Annotated[str, Depends(get_tenant_id)]
