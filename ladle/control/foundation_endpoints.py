"""Pay-per-token foundation model endpoints: one per catalog model whose weights are on the
machine, created at start (and when a model is added), queryable by every user. They scale
to zero and start their first replica on the first request, so an unused model costs
nothing."""

from __future__ import annotations

import logging

from ladle.control.endpoints import EndpointService
from ladle.control.permissions import PermissionService
from ladle.entities.catalog import ENTITY_VERSION, Catalog, CatalogModel
from ladle.schemas import endpoints as s
from ladle.schemas.principal import Principal

log = logging.getLogger("ladle.foundation")
SYSTEM = Principal("system", kind="service_principal", is_admin=True)
FOUNDATION_API = "FOUNDATION_MODEL_API"


def endpoint_request(m: CatalogModel) -> s.CreateEndpointRequest:
    return s.CreateEndpointRequest(
        name=m.endpoint_name, description=f"Pay-per-token endpoint of {m.display_name} ({m.model_id})",
        config=s.EndpointCoreConfigInput(served_entities=[s.ServedEntityInput(
            name=m.endpoint_name, entity_name=m.entity_name, entity_version=ENTITY_VERSION,
            workload_size="Small", scale_to_zero_enabled=True)]))


async def ensure_pay_per_token(endpoints: EndpointService, perms: PermissionService, catalog: Catalog,
                               only: str | None = None) -> list[str]:
    """Create the missing pay-per-token endpoints; returns the names created."""
    created = []
    for m in catalog.all():
        if not m.weights_present or (only is not None and m.entity_name != only):
            continue
        if await endpoints.exists(m.endpoint_name):
            continue
        try:
            out = await endpoints.create(SYSTEM, endpoint_request(m), meta_extra={"endpoint_type": FOUNDATION_API})
        except Exception as e:  # never block the server's start on one model
            log.warning("could not create the pay-per-token endpoint %s: %s", m.endpoint_name, e)
            continue
        await perms.add(out["id"], [("group_name", "users", "CAN_QUERY")])
        created.append(m.endpoint_name)
    return created
