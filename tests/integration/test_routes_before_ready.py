"""An endpoint that a client sees READY and not updating is routed by then: the reconciler
publishes the new routes before it stores the new state (a client polling `get` and querying
at once got a 404 'not ready' in the gap)."""

from __future__ import annotations

from tests.integration.conftest import create


def test_the_stored_ready_state_never_precedes_the_route(client):
    svc = client.app.app.state.services
    store = svc.endpoints.store
    seen: list[tuple[str, bool]] = []
    save = store.save_endpoint

    def watching_save(rec, *a, **kw):
        if rec.active is not None and rec.pending is None and rec.config_update == "NOT_UPDATING":
            seen.append((rec.name, rec.name in svc.gateway.routes))
        return save(rec, *a, **kw)

    store.save_endpoint = watching_save
    try:
        create(client, "first")
        r = client.post("/serving-endpoints/first/invocations", json={"inputs": [[1]]})
        assert r.status_code == 200, r.text
        client.put("/api/2.0/serving-endpoints/first/config",
                   json={"served_entities": [{"entity_name": "m", "entity_version": "2"}]})
        create(client, "second")
    finally:
        store.save_endpoint = save
    assert seen and all(routed for _, routed in seen), seen
    assert {name for name, _ in seen} >= {"first", "second"}
